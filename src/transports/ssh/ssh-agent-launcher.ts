/**
 * Runs the agent on a remote host over SSH (ssh2): one connection per host and side, the agent as an
 * exec channel (control = its stdin/stdout), each data stream as its own `direct-streamlocal@openssh.com`
 * channel to the agent's unix socket. After a dropped link, reconnect() dials again and the client
 * re-attaches to the same agent, which lingers for `reconnectWindow`.
 */
import { PassThrough } from 'node:stream'
import type { Client, ClientChannel } from 'ssh2'
import { SnapferryError } from '../../errors/snapferry-error.js'
import type { Logger } from '../../logging/logger.js'
import type { AgentConnection, AgentLauncher } from '../agent-connection.js'
import { shellCommand } from './shell-quote.js'
import { connectSsh, type SshConnectOptions } from './ssh-connect.js'
import type { SshTarget } from './ssh-target.js'

export interface SshLauncherOptions extends SshConnectOptions {
  readonly agentCommand: readonly string[]
  readonly reconnectWindowMs: number
}

export class SshAgentLauncher implements AgentLauncher {
  readonly #t: SshTarget
  readonly #o: SshLauncherOptions
  readonly #log: Logger

  constructor(target: SshTarget, o: SshLauncherOptions, log: Logger) {
    this.#t = target
    this.#o = o
    this.#log = log
  }

  async launch(): Promise<AgentConnection> {
    const t = this.#t
    const o = this.#o
    const log = this.#log
    let client: Client = await connectSsh(t, o, log)
    const argv = [...o.agentCommand, '--linger', `${Math.ceil(o.reconnectWindowMs / 1000)}s`]
    const cmd = shellCommand(argv)
    const ch = await new Promise<ClientChannel>((resolve, reject) =>
      client.exec(cmd, (err, stream) =>
        err
          ? reject(
              new SnapferryError('AGENT_START_FAILED', `cannot run the agent on ${t.spec}: ${err.message}`, {
                hint: 'the sshd there may forbid exec channels (ForceCommand?)',
              }),
            )
          : resolve(stream),
      ),
    )
    let stderrTail = ''
    ch.stderr.setEncoding('utf8')
    ch.stderr.on('data', (s: string) => {
      stderrTail = (stderrTail + s).slice(-4000)
      for (const line of s.split('\n')) if (line.trim()) log.debug({ agent: t.spec, line }, 'agent stderr')
    })
    const exited = new Promise<{ code: number | null; signal: string | null; stderrTail: string }>(
      (resolve) => {
        let code: number | null = null
        let signal: string | null = null
        let done = false
        const finish = () => {
          if (done) return
          done = true
          if (code === 127)
            stderrTail = `${stderrTail}\n(exit 127: \`${cmd}\` was not found on ${t.spec}; install snapferry there (npm install -g snapferry) or set transport.ssh.agentCommand)`
          resolve({ code, signal, stderrTail })
        }
        ch.on('exit', (c: number | null, s?: string) => {
          code = c
          signal = s ?? null
          // 'close' does not always follow promptly; the exit status is what matters.
          setTimeout(finish, 100).unref()
        })
        ch.on('close', finish)
      },
    )
    // The exec channel is this connection's control stream; keep the same stream objects for the client.
    const fromAgent = new PassThrough()
    ch.pipe(fromAgent)
    ch.on('close', () => fromAgent.end())
    return {
      host: t.spec,
      fromAgent,
      toAgent: ch,
      exited,
      resilience: {
        windowMs: o.reconnectWindowMs,
        pingMs: Math.max(1000, Math.min(o.keepaliveIntervalMs, 10_000)),
      },
      openDataChannel: (socketPath) =>
        new Promise((resolve, reject) =>
          client.openssh_forwardOutStreamLocal(socketPath, (err, stream) =>
            err
              ? reject(
                  new SnapferryError(
                    'AGENT_PROTOCOL',
                    `${t.spec} refused a data channel to the agent's socket: ${err.message}`,
                    {
                      transient: true,
                      hint: 'the sshd there needs AllowStreamLocalForwarding yes (the default)',
                    },
                  ),
                )
              : resolve(stream),
          ),
        ),
      reconnect: async () => {
        client.end()
        client = await connectSsh(t, o, log)
      },
      close: async () => {
        ch.end()
        // An agent that does not finish within 5 s gets its channel closed (sshd then hangs it up).
        const timer = setTimeout(() => ch.close(), 5000)
        let giveUp: NodeJS.Timeout | undefined
        await Promise.race([exited, new Promise((r) => (giveUp = setTimeout(r, 6000)))])
        clearTimeout(timer)
        clearTimeout(giveUp)
        client.end()
      },
    }
  }
}
