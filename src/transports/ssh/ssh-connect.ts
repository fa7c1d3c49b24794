/**
 * One authenticated SSH connection with ssh2, the way OpenSSH users expect: host key checked against
 * known_hosts (refused when unknown unless accepting new keys was asked for; refused when changed,
 * always), ssh-agent via SSH_AUTH_SOCK then identity files, ProxyJump hops, keepalives, and errors that
 * name the host, the user and the file to fix.
 */
import { readFile } from 'node:fs/promises'
import type { Duplex } from 'node:stream'
import { type AuthenticationType, Client, type ConnectConfig } from 'ssh2'
import { SnapferryError } from '../../errors/snapferry-error.js'
import type { Logger } from '../../logging/logger.js'
import { batchedTcpConnection } from './batched-socket.js'
import { appendKnownHost, knownHostName, readKnownHosts, verifyHostKey } from './known-hosts.js'
import type { SshTarget } from './ssh-target.js'

export interface SshConnectOptions {
  readonly acceptNewHostKeys: boolean
  readonly connectTimeoutMs: number
  readonly keepaliveIntervalMs: number
  readonly keepaliveCountMax: number
}

/** Connect to `t` (through its jump hosts); resolves once authenticated. */
export async function connectSsh(t: SshTarget, o: SshConnectOptions, log: Logger): Promise<Client> {
  let sock: Duplex | undefined
  const hops: Client[] = []
  try {
    for (const j of t.jumps) {
      const c = await connectOne(j, o, log, sock)
      hops.push(c)
      sock = await new Promise<Duplex>((resolve, reject) =>
        c.forwardOut('127.0.0.1', 0, t.address, t.port, (err, ch) =>
          err
            ? reject(
                new SnapferryError(
                  'SSH_CONNECT_FAILED',
                  `jump host ${j.spec} cannot reach ${t.address}:${t.port}: ${err.message}`,
                  { transient: true, hint: `check that ${j.spec} can connect to ${t.address}:${t.port}` },
                ),
              )
            : resolve(ch),
        ),
      )
    }
    const c = await connectOne(t, o, log, sock)
    c.once('close', () => {
      for (const h of hops) h.end()
    })
    return c
  } catch (e) {
    for (const h of hops) h.end()
    throw e
  }
}

async function connectOne(t: SshTarget, o: SshConnectOptions, log: Logger, sock?: Duplex): Promise<Client> {
  const where = `${t.user}@${t.address}${t.port === 22 ? '' : `:${t.port}`}`
  const keyName = knownHostName(t.hostKeyName, t.port)
  const knownFile = t.knownHostsFiles[0] as string
  let keyProblem: SnapferryError | undefined
  const keys: { file: string; key: Buffer }[] = []
  for (const f of t.identityFiles) {
    try {
      keys.push({ file: f, key: await readFile(f) })
    } catch {
      // Missing default identities are normal (OpenSSH skips them too).
    }
  }
  const tried: string[] = []
  const authHandler: ConnectConfig['authHandler'] = (_methodsLeft, _partial, next) => {
    if (process.env.SSH_AUTH_SOCK && !tried.includes('ssh-agent')) {
      tried.push('ssh-agent')
      return next({ type: 'agent', username: t.user, agent: process.env.SSH_AUTH_SOCK })
    }
    const k = keys.shift()
    if (k) {
      tried.push(k.file)
      return next({ type: 'publickey', username: t.user, key: k.key })
    }
    return next(false as unknown as AuthenticationType)
  }
  const client = new Client()
  const cfg: ConnectConfig = {
    host: t.address,
    port: t.port,
    username: t.user,
    // A direct connection gets a socket that batches ssh2's per-packet writes (batched-socket.ts).
    sock: sock ?? batchedTcpConnection(t.address, t.port),
    readyTimeout: o.connectTimeoutMs,
    keepaliveInterval: o.keepaliveIntervalMs,
    keepaliveCountMax: o.keepaliveCountMax,
    authHandler,
    hostVerifier: (key: Buffer, verify: (ok: boolean) => void) => {
      void (async () => {
        const files = await Promise.all(t.knownHostsFiles.map((f) => readKnownHosts(f)))
        const verdicts = files.map((entries) => verifyHostKey(entries, keyName, key))
        const hit = verdicts.find((v) => v.kind === 'match')
        const revoked = verdicts.findIndex((v) => v.kind === 'revoked')
        const mismatch = verdicts.findIndex((v) => v.kind === 'mismatch')
        if (revoked >= 0) {
          keyProblem = new SnapferryError(
            'SSH_HOST_KEY_MISMATCH',
            `host key of ${keyName} is marked @revoked in ${t.knownHostsFiles[revoked]}`,
            { hint: 'the host presents a revoked key: do not connect until its key is replaced' },
          )
          return verify(false)
        }
        if (hit) return verify(true)
        if (mismatch >= 0) {
          const v = verdicts[mismatch] as { lines: readonly number[] }
          keyProblem = new SnapferryError(
            'SSH_HOST_KEY_MISMATCH',
            `host key of ${keyName} differs from the one in ${t.knownHostsFiles[mismatch]} line ${v.lines.join(', ')} — possibly someone is intercepting the connection, or the host was reinstalled`,
            {
              hint: `if the new key is legitimate, remove the old one: ssh-keygen -f ${t.knownHostsFiles[mismatch]} -R '${keyName}'`,
              details: { host: keyName, file: t.knownHostsFiles[mismatch] },
            },
          )
          return verify(false)
        }
        if (o.acceptNewHostKeys) {
          await appendKnownHost(knownFile, keyName, key)
          log.warn({ host: keyName, file: knownFile }, 'added a new host key (acceptNewHostKeys)')
          return verify(true)
        }
        keyProblem = new SnapferryError(
          'SSH_HOST_KEY_UNKNOWN',
          `host ${keyName} is not in ${t.knownHostsFiles.join(' or ')}: its key cannot be verified`,
          {
            hint: `check the key out of band and add it (ssh-keyscan -p ${t.port} ${t.address} >> ${knownFile}), or connect once with ssh, or set transport.ssh.acceptNewHostKeys: true`,
            details: { host: keyName, file: knownFile },
          },
        )
        verify(false)
      })().catch((e) => {
        keyProblem = new SnapferryError(
          'SSH_CONNECT_FAILED',
          `cannot check the host key of ${keyName}: ${(e as Error).message}`,
        )
        verify(false)
      })
    },
  }
  await new Promise<void>((resolve, reject) => {
    const onError = (e: Error & { level?: string; code?: string }) => {
      client.off('ready', onReady)
      reject(keyProblem ?? mapConnectError(e, where, tried, t))
    }
    const onReady = () => {
      client.off('error', onError)
      resolve()
    }
    client.once('ready', onReady)
    client.once('error', onError)
    client.connect(cfg)
  })
  client.on('error', (e) => log.debug({ host: where, err: e.message }, 'ssh connection error'))
  log.debug({ host: where }, 'ssh connected')
  return client
}

function mapConnectError(
  e: Error & { level?: string; code?: string },
  where: string,
  tried: readonly string[],
  t: SshTarget,
): SnapferryError {
  if (e.level === 'client-authentication')
    return new SnapferryError(
      'SSH_AUTH_FAILED',
      `${where} refused authentication (tried: ${tried.length ? tried.join(', ') : 'no keys found'})`,
      {
        hint: `add a key for ${t.user} to ${t.address}'s authorized_keys, load it into ssh-agent (SSH_AUTH_SOCK), or set transport.ssh.identityFile`,
        details: { host: where, tried },
      },
    )
  const code = e.code ?? ''
  const why =
    code === 'ECONNREFUSED'
      ? 'connection refused (is sshd running and listening on that port?)'
      : code === 'ENOTFOUND' || code === 'EAI_AGAIN'
        ? 'the host name does not resolve'
        : code === 'EHOSTUNREACH' || code === 'ENETUNREACH'
          ? 'no route to the host'
          : /timed out/i.test(e.message)
            ? `no answer within the connect timeout (${e.message})`
            : e.message
  return new SnapferryError('SSH_CONNECT_FAILED', `cannot connect to ${where}: ${why}`, {
    transient: code !== 'ENOTFOUND',
    hint: `check the address and port (ssh -p ${t.port} ${t.user}@${t.address} true), and transport.ssh.connectTimeout`,
    details: { host: where, code },
    cause: e,
  })
}
