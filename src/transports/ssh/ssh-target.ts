/**
 * Where to connect and as whom: a pipeline `host:` (`[user@]host[:port]` or a Host alias) resolved
 * through the OpenSSH client config (`ssh-config`, a maintained parser): HostName, User, Port,
 * IdentityFile, ProxyJump, UserKnownHostsFile. Explicit user/port in `host:` win over the config, as
 * with `ssh user@host -p port`.
 */
import { readFileSync } from 'node:fs'
import { homedir, userInfo } from 'node:os'
import path from 'node:path'
import SSHConfig from 'ssh-config'
import { SnapferryError } from '../../errors/snapferry-error.js'

export interface SshTarget {
  /** What the pipeline said, for messages. */
  readonly spec: string
  /** The address the TCP connection goes to (HostName, else the name given). */
  readonly address: string
  /** The name known_hosts is checked under (HostKeyAlias, else `address`). */
  readonly hostKeyName: string
  readonly port: number
  readonly user: string
  readonly identityFiles: readonly string[]
  readonly knownHostsFiles: readonly string[]
  /** Jump hosts to go through, in order (ProxyJump). */
  readonly jumps: readonly SshTarget[]
}

export function expandHome(p: string): string {
  return p === '~' ? homedir() : p.startsWith('~/') ? path.join(homedir(), p.slice(2)) : p
}

export function splitDestination(spec: string): { user?: string; host: string; port?: number } {
  const at = spec.lastIndexOf('@')
  const user = at >= 0 ? spec.slice(0, at) : undefined
  let rest = at >= 0 ? spec.slice(at + 1) : spec
  let port: number | undefined
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(rest)
  if (v6) {
    rest = v6[1] as string
    port = v6[2] ? Number(v6[2]) : undefined
  } else {
    const m = /^(.*):(\d+)$/.exec(rest)
    if (m) {
      rest = m[1] as string
      port = Number(m[2])
    }
  }
  return { ...(user ? { user } : {}), host: rest, ...(port ? { port } : {}) }
}

export interface ResolveOptions {
  /** Path of the ssh client config, or 'none'. */
  readonly config: string
  readonly knownHosts: string
  readonly identityFile?: string | undefined
}

type Computed = Record<string, string | string[] | undefined>

export function loadSshConfig(file: string): SSHConfig | undefined {
  if (file === 'none') return undefined
  const p = expandHome(file)
  let text: string
  try {
    text = readFileSync(p, 'utf8')
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw e
  }
  try {
    return SSHConfig.parse(text)
  } catch (e) {
    throw new SnapferryError(
      'SSH_CONFIG_INVALID',
      `cannot parse the ssh config ${p}: ${(e as Error).message}`,
      {
        hint: 'fix the file, or set transport.ssh.config to another file or `none`',
        cause: e,
      },
    )
  }
}

export function resolveTarget(
  spec: string,
  o: ResolveOptions,
  cfg = loadSshConfig(o.config),
  depth = 0,
): SshTarget {
  if (depth > 8)
    throw new SnapferryError(
      'SSH_CONFIG_INVALID',
      `ProxyJump chain for ${spec} is longer than 8 hops (a loop?)`,
    )
  const d = splitDestination(spec)
  const c: Computed = (cfg?.compute(d.host) as Computed | undefined) ?? {}
  const one = (k: string) => {
    const v = c[k]
    return Array.isArray(v) ? v[0] : v
  }
  const many = (k: string) => {
    const v = c[k]
    return v === undefined ? [] : Array.isArray(v) ? v : [v]
  }
  const hostName = (one('HostName') ?? d.host).replace(/%h/g, d.host)
  const user = d.user ?? one('User') ?? userInfo().username
  const port = d.port ?? Number(one('Port') ?? 22)
  const identityFiles = [
    ...(o.identityFile ? [o.identityFile] : []),
    ...many('IdentityFile'),
    ...(many('IdentityFile').length === 0 && !o.identityFile
      ? ['~/.ssh/id_ed25519', '~/.ssh/id_ecdsa', '~/.ssh/id_rsa']
      : []),
  ].map(expandHome)
  const knownHostsFiles = [
    expandHome(o.knownHosts),
    ...many('UserKnownHostsFile')
      .flatMap((v) => v.split(/\s+/))
      .map(expandHome),
  ].filter((v, i, a) => v !== 'none' && a.indexOf(v) === i)
  const jumpSpec = one('ProxyJump')
  const jumps =
    jumpSpec && jumpSpec !== 'none'
      ? jumpSpec.split(',').map((j) => resolveTarget(j.trim(), o, cfg, depth + 1))
      : []
  return {
    spec,
    address: hostName,
    hostKeyName: one('HostKeyAlias') ?? hostName,
    port,
    user,
    identityFiles,
    knownHostsFiles,
    jumps,
  }
}
