/**
 * Two real hosts: network namespaces joined by a veth pair, an OpenSSH sshd in each, the controller
 * inside namespace A reaching the source agent on A and the destination agent on B over SSH (ssh2).
 * Needs root, iproute2 and openssh-server (CI installs them).
 */
import { execFile, spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { pipeline } from 'node:stream/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTwoHosts, type TwoHosts } from '../../bench/lib/two-hosts.js'
import { readJournal } from '../../src/state/journal.js'
import { CLI_ENTRY, REPO_ROOT } from '../helpers/built.js'
import { mulberry32, randomBytes } from '../helpers/random.js'

const AGENT = path.join(REPO_ROOT, 'dist/agents/snapferry-agent.js')
let h: TwoHosts

beforeAll(async () => {
  h = await startTwoHosts()
}, 60_000)
afterAll(async () => {
  await h?.stop()
})

async function sha(file: string): Promise<string> {
  const x = createHash('sha256')
  await pipeline(createReadStream(file), x)
  return x.digest('hex')
}

interface Run {
  code: number | null
  stdout: string
  stderr: string
}

/** The CLI inside namespace A, with no ssh-agent of the caller's. */
function cli(
  args: string[],
  env: Record<string, string> = {},
  during?: (elapsedMs: number) => Promise<void>,
): Promise<Run> {
  return new Promise((resolve) => {
    const argv = h.inA([process.execPath, CLI_ENTRY, ...args])
    const { SSH_AUTH_SOCK: _drop, ...base } = process.env
    const p = spawn(argv[0] as string, argv.slice(1), { cwd: REPO_ROOT, env: { ...base, ...env } })
    let stdout = ''
    let stderr = ''
    p.stdout.on('data', (b: Buffer) => {
      stdout += b.toString()
    })
    p.stderr.on('data', (b: Buffer) => {
      stderr += b.toString()
    })
    if (during) void during(0)
    p.on('exit', (code) => resolve({ code, stdout, stderr }))
  })
}

interface Move {
  dir: string
  src: string
  dst: string
  file: string
}

/** A source image of `mib` MiB (mixed: zeros, text, random) on A, a pipeline moving it to B. */
async function move(o: {
  mib: number
  ssh?: string
  transport?: string
  name?: string
  extra?: string
  sourceHost?: string
  destHost?: string
}): Promise<Move> {
  const dir = await mkdtemp(path.join(tmpdir(), 'sf-ssh-'))
  const src = path.join(dir, 'src.img')
  const dst = path.join(dir, 'dst.img')
  const rnd = mulberry32(o.mib)
  const fh = await open(src, 'w')
  for (let i = 0; i < o.mib; i++) {
    const k = i % 3
    const b =
      k === 0
        ? Buffer.alloc(1 << 20)
        : k === 1
          ? Buffer.from(
              'snapferry log line with a timestamp 2026-11-22T10:00:00Z\n'.repeat(18725).slice(0, 1 << 20),
            )
          : randomBytes(rnd, 1 << 20)
    await fh.write(b, 0, b.length, i << 20)
  }
  await fh.close()
  const file = path.join(dir, 'pipeline.yaml')
  await writeFile(
    file,
    `apiVersion: snapferry/v1
kind: Pipeline
name: ${o.name ?? 'twohost'}
volumes:
  - name: disk
    source: { driver: file, path: ${src}, host: ${o.sourceHost ?? `root@${h.ipA}`} }
    destination: { driver: file, path: ${dst}, host: ${o.destHost ?? `root@${h.ipB}`} }
stateDir: state
convergence: { whenConverged: cutover, minRounds: 1, targetDowntime: 60s }
transport:
  ssh:
    config: none
    knownHosts: ${h.knownHosts}
    identityFile: ${h.identity}
    agentCommand: [${process.execPath}, ${AGENT}]
    keepaliveInterval: 1s
    keepaliveCountMax: 3
    connectTimeout: 5s
${o.ssh ?? ''}
${o.transport ?? ''}
${o.extra ?? ''}`,
  )
  return { dir, src, dst, file }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function roundStats(m: Move) {
  return (await readJournal(path.join(m.dir, 'state')))
    .filter((e) => e.type === 'round-completed')
    .map((e) => (e as { stats: { wireBytes?: number; streamBytes: number; resumes?: number } }).stats)
}

describe('two hosts over SSH', () => {
  it('moves a live volume (a writer running until the cutover stops it) over a 100 Mbit link', async () => {
    await h.shape('100mbit')
    const m = await move({
      mib: 64,
      extra: `cutover:
  before:
    - name: stop-writer
      run: [${process.execPath}, ${path.join(REPO_ROOT, 'dist/examples/demo/stop-writer.js')}, ${'WORK'}/writer.pid]`,
    })
    await writeFile(m.file, (await readFile(m.file, 'utf8')).replace('WORK', m.dir))
    const writer = spawn(
      process.execPath,
      [
        path.join(REPO_ROOT, 'dist/examples/demo/live-writer.js'),
        m.src,
        String(1 << 20),
        path.join(m.dir, 'writer.pid'),
      ],
      { stdio: 'ignore' },
    )
    const r = await cli(['run', m.file])
    writer.kill('SIGKILL')
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/cutover done: downtime/)
    expect(await sha(m.dst)).toBe(await sha(m.src))
    const rounds = await roundStats(m)
    expect(rounds.length).toBeGreaterThanOrEqual(3)
    await h.shape(undefined)
    await rm(m.dir, { recursive: true, force: true })
  }, 180_000)

  it('survives the link going down mid-transfer: reconnects, resumes where B stopped, B identical', async () => {
    await h.shape('100mbit')
    const m = await move({ mib: 96, transport: '  compression: none' })
    const running = cli(['run', m.file])
    // Cut the link mid-transfer, not while the agents still start (slow when CI shares the cores): once
    // the base's transfer began, 96 MiB at 100 Mbit take at least 8 s.
    for (let i = 0; i < 300; i++) {
      const started = (await readJournal(path.join(m.dir, 'state')).catch(() => [])).some(
        (e) => e.type === 'transfer-started',
      )
      if (started) break
      await sleep(100)
    }
    await sleep(1500)
    await h.linkDown()
    // Down longer than keepalive (1 s × 3): both SSH connections count as dropped.
    await sleep(6000)
    await h.linkUp()
    const r = await running
    expect(r.code).toBe(0)
    expect(await sha(m.dst)).toBe(await sha(m.src))
    const base = (await roundStats(m))[0]
    expect(base?.resumes).toBeGreaterThanOrEqual(1)
    // Resumed, not restarted: at most the send window (32 MiB) goes twice.
    expect(base?.wireBytes).toBeLessThan((base?.streamBytes ?? 0) + 34 * 1024 * 1024)
    expect(await readFile(path.join(m.dir, 'state/snapferry.log'), 'utf8')).toContain(
      're-attached to the agent',
    )
    await h.shape(undefined)
    await rm(m.dir, { recursive: true, force: true })
  }, 180_000)

  it('a segment damaged between the agents is refused and sent again; B identical', async () => {
    const m = await move({ mib: 12 })
    const r = await cli(['run', m.file], { SNAPFERRY_TEST_CORRUPT_WIRE_BYTE: '1500000' })
    expect(r.code).toBe(0)
    expect(await sha(m.dst)).toBe(await sha(m.src))
    expect((await roundStats(m))[0]?.resumes).toBe(1)
    await rm(m.dir, { recursive: true, force: true })
  }, 60_000)

  it('moves a volume from A to B over a 100 Mbit link, byte-identical, compressed on the wire', async () => {
    await h.shape('100mbit')
    const m = await move({ mib: 24 })
    const r = await cli(['run', m.file])
    expect(r.stderr + r.stdout).not.toMatch(/error/i)
    expect(r.code).toBe(0)
    expect(await sha(m.dst)).toBe(await sha(m.src))
    const rounds = (await readJournal(path.join(m.dir, 'state'))).filter((e) => e.type === 'round-completed')
    const base = (
      rounds[0] as {
        stats: {
          wireBytes?: number
          streamBytes: number
          transferMs: number
          sendWaitsMs?: { forLink: number; forSource: number }
        }
      }
    ).stats
    expect(base.wireBytes).toBeLessThan(base.streamBytes * 0.6)
    // The round says where the sending agent waited: for the link or receiver, and for the source.
    const w = base.sendWaitsMs
    expect(Object.keys(w ?? {}).sort()).toEqual(['forLink', 'forSource'])
    expect((w?.forLink ?? -1) + (w?.forSource ?? -1)).toBeLessThanOrEqual(base.transferMs)
    expect(w?.forLink).toBeGreaterThanOrEqual(0)
    await h.shape(undefined)
    await rm(m.dir, { recursive: true, force: true })
  }, 120_000)

  it('refuses a changed host key, naming the host, the file and the line', async () => {
    const m = await move({ mib: 1, ssh: '' })
    const kh = path.join(m.dir, 'known_hosts')
    // B's address with A's key: what a man in the middle (or a reinstalled host) looks like.
    await writeFile(kh, `${h.ipA} ${h.hostKeys.a}\n${h.ipB} ${h.hostKeys.a}\n`)
    await writeFile(m.file, (await readFile(m.file, 'utf8')).replace(h.knownHosts, kh))
    const r = await cli(['run', m.file])
    expect(r.code).toBe(1)
    expect(r.stderr).toContain(
      `error SSH_HOST_KEY_MISMATCH: host key of ${h.ipB} differs from the one in ${kh} line 2`,
    )
    expect(r.stderr).toContain(`ssh-keygen -f ${kh} -R '${h.ipB}'`)
    await rm(m.dir, { recursive: true, force: true })
  }, 60_000)

  it('refuses an unknown host unless acceptNewHostKeys, which then records its key', async () => {
    const m = await move({ mib: 1 })
    const kh = path.join(m.dir, 'known_hosts')
    await writeFile(kh, `${h.ipA} ${h.hostKeys.a}\n`)
    await writeFile(m.file, (await readFile(m.file, 'utf8')).replace(h.knownHosts, kh))
    const r = await cli(['run', m.file])
    expect(r.code).toBe(1)
    expect(r.stderr).toContain(`error SSH_HOST_KEY_UNKNOWN: host ${h.ipB} is not in ${kh}`)
    await writeFile(
      m.file,
      `${await readFile(m.file, 'utf8')}\n`.replace(
        '    config: none',
        '    config: none\n    acceptNewHostKeys: true',
      ),
    )
    const ok = await cli(['run', m.file])
    expect(ok.code).toBe(0)
    expect(await readFile(kh, 'utf8')).toContain(`${h.ipB} ${h.hostKeys.b}`)
    expect(await sha(m.dst)).toBe(await sha(m.src))
    await rm(m.dir, { recursive: true, force: true })
  }, 60_000)

  it('reports an authentication failure with the user, host and keys tried', async () => {
    const m = await move({ mib: 1 })
    const stranger = path.join(m.dir, 'stranger')
    await new Promise((r) => execFile('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', stranger], r))
    await writeFile(m.file, (await readFile(m.file, 'utf8')).replace(h.identity, stranger))
    const r = await cli(['run', m.file])
    expect(r.code).toBe(1)
    // Both hosts refuse the stranger's key; whichever answers first is reported.
    expect(r.stderr).toContain('error SSH_AUTH_FAILED: root@10.77.')
    expect(r.stderr).toContain(` refused authentication (tried: ${stranger})`)
    await rm(m.dir, { recursive: true, force: true })
  }, 60_000)

  it('reports a refused connection and a missing agent clearly', async () => {
    const m = await move({ mib: 1, sourceHost: `root@${h.ipA}:2299` })
    const r = await cli(['run', m.file])
    expect(r.code).toBe(1)
    expect(r.stderr).toContain(
      `error SSH_CONNECT_FAILED: cannot connect to root@${h.ipA}:2299: connection refused`,
    )
    const n = await move({ mib: 1 })
    await writeFile(
      n.file,
      (await readFile(n.file, 'utf8')).replace(
        `[${process.execPath}, ${AGENT}]`,
        '[/opt/nowhere/snapferry-agent]',
      ),
    )
    const r2 = await cli(['run', n.file])
    expect(r2.code).toBe(1)
    expect(r2.stderr).toMatch(/^error AGENT_NOT_INSTALLED: no snapferry agent on root@10\.77\.\d+\.[12]: /)
    expect(r2.stderr).toContain('/opt/nowhere/snapferry-agent --linger 120s` was not found')
    await rm(m.dir, { recursive: true, force: true })
    await rm(n.dir, { recursive: true, force: true })
  }, 60_000)

  it('authenticates through ssh-agent (SSH_AUTH_SOCK) without an identity file', async () => {
    const m = await move({ mib: 2 })
    const sock = path.join(m.dir, 'agent.sock')
    const agent = spawn('ssh-agent', ['-D', '-a', sock], { stdio: 'ignore' })
    for (let i = 0; i < 50; i++) {
      if (
        await readFile(sock).then(
          () => true,
          (e) => e.code !== 'ENOENT',
        )
      )
        break
      await new Promise((r) => setTimeout(r, 50))
    }
    await new Promise((r) =>
      execFile('ssh-add', [h.identity], { env: { ...process.env, SSH_AUTH_SOCK: sock } }, r),
    )
    await writeFile(m.file, (await readFile(m.file, 'utf8')).replace(`    identityFile: ${h.identity}\n`, ''))
    const r = await cli(['run', m.file], { SSH_AUTH_SOCK: sock, HOME: m.dir })
    agent.kill()
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(await sha(m.dst)).toBe(await sha(m.src))
    await rm(m.dir, { recursive: true, force: true })
  }, 60_000)
})
