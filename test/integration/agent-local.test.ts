/** The driver contract again, with each volume behind a real agent child process (protocol v2). */
import { mkdtemp, rm, truncate, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { AgentClient } from '../../src/agent-protocol/agent-client.js'
import { RemoteVolumeDriver } from '../../src/agent-protocol/remote-volume-driver.js'
import { silentLogger } from '../../src/logging/logger.js'
import { LocalAgentLauncher } from '../../src/transports/local/local-agent-launcher.js'
import { runVolumeDriverContract } from '../contract/volume-driver-contract.js'
import { AGENT_ENTRY } from '../helpers/built.js'
import { pwrite } from '../helpers/files.js'

runVolumeDriverContract({
  name: 'file driver behind local agents',
  create: async (size) => {
    const dir = await mkdtemp(path.join(tmpdir(), 'sf-agent-'))
    const src = path.join(dir, 'src.img')
    const dst = path.join(dir, 'dst.img')
    await writeFile(src, '')
    await truncate(src, size)
    const launcher = new LocalAgentLauncher(silentLogger(), AGENT_ENTRY)
    const a = await AgentClient.connect(await launcher.launch())
    const b = await AgentClient.connect(await launcher.launch())
    const ep = (p: string) => ({ driver: 'file' as const, host: 'local' as const, path: p, blockSize: 16384 })
    return {
      source: await RemoteVolumeDriver.open(a, { endpoint: ep(src), label: 'src' }),
      destination: await RemoteVolumeDriver.open(b, { endpoint: ep(dst), label: 'dst' }),
      write: (side, off, data) => pwrite(side === 'source' ? src : dst, off, data),
      resize: (_side, n) => truncate(src, n),
      cleanup: async () => {
        await a.close()
        await b.close()
        await rm(dir, { recursive: true, force: true })
      },
    }
  },
})

describe('agent handshake and lifetime', () => {
  it('says hello with protocol and version, and exits when the controller closes its input', async () => {
    const conn = await new LocalAgentLauncher(silentLogger(), AGENT_ENTRY).launch()
    const client = await AgentClient.connect(conn)
    expect(client.hello.protocol).toBe(2)
    expect(client.hello.dataSocket).toMatch(/data\.sock$/)
    await client.close()
    const exit = await conn.exited
    expect(exit.code).toBe(0)
  })

  it('reports errors from the agent with their code, message and hint intact', async () => {
    const client = await AgentClient.connect(
      await new LocalAgentLauncher(silentLogger(), AGENT_ENTRY).launch(),
    )
    try {
      const vol = await RemoteVolumeDriver.open(client, {
        endpoint: { driver: 'file', host: 'local', path: '/nonexistent/x.img', blockSize: 65536 },
        label: 'volume x (source)',
      })
      await expect(vol.createSnapshot('not-ours')).rejects.toMatchObject({
        code: 'SNAPSHOT_NAME_INVALID',
        message: expect.stringContaining("refusing snapshot name 'not-ours' on volume x (source)"),
      })
    } finally {
      await client.close()
    }
  })
})
