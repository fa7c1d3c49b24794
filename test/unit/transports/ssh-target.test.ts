import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { shellCommand } from '../../../src/transports/ssh/shell-quote.js'
import { resolveTarget, splitDestination } from '../../../src/transports/ssh/ssh-target.js'

describe('ssh destinations and config', () => {
  it('splits user, host, port and bracketed v6', () => {
    expect(splitDestination('root@ceph-b:2222')).toEqual({ user: 'root', host: 'ceph-b', port: 2222 })
    expect(splitDestination('ceph-b')).toEqual({ host: 'ceph-b' })
    expect(splitDestination('[fd00::2]:22')).toEqual({ host: 'fd00::2', port: 22 })
  })

  it('honours Host aliases, HostName, User, Port, IdentityFile, ProxyJump; explicit user/port win', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'sf-sshcfg-'))
    const cfg = path.join(dir, 'config')
    await writeFile(
      cfg,
      `Host region-b
  HostName 10.2.0.5
  User mover
  Port 2222
  IdentityFile ${dir}/key_b
  ProxyJump jump

Host jump
  HostName bastion.example.org
  User ops
`,
    )
    const t = resolveTarget('region-b', { config: cfg, knownHosts: `${dir}/kh` })
    expect(t).toMatchObject({ address: '10.2.0.5', hostKeyName: '10.2.0.5', user: 'mover', port: 2222 })
    expect(t.identityFiles).toEqual([`${dir}/key_b`])
    expect(t.knownHostsFiles).toEqual([`${dir}/kh`])
    expect(t.jumps.map((j) => [j.address, j.user, j.port])).toEqual([['bastion.example.org', 'ops', 22]])
    const u = resolveTarget('root@region-b:22', { config: cfg, knownHosts: `${dir}/kh` })
    expect([u.user, u.port]).toEqual(['root', 22])
    const none = resolveTarget('region-b', { config: 'none', knownHosts: `${dir}/kh`, identityFile: '/k' })
    expect([none.address, none.port, none.identityFiles]).toEqual(['region-b', 22, ['/k']])
  })

  it('quotes every word for the remote shell', () => {
    expect(shellCommand(['/opt/snap ferry/agent', "it's", '--linger', '120s'])).toBe(
      `'/opt/snap ferry/agent' 'it'\\''s' --linger 120s`,
    )
  })
})
