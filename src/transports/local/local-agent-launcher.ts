/** Runs the agent as a child process of the controller (host: local). */
import { spawn } from 'node:child_process'
import { connect } from 'node:net'
import { fileURLToPath } from 'node:url'
import type { Logger } from 'pino'
import { SnapferryError } from '../../errors/snapferry-error.js'
import type { AgentConnection, AgentLauncher } from '../agent-connection.js'

/** dist/src/transports/local → dist/agents/snapferry-agent.js */
export const LOCAL_AGENT_ENTRY = fileURLToPath(new URL('../../../agents/snapferry-agent.js', import.meta.url))

export class LocalAgentLauncher implements AgentLauncher {
  readonly #log: Logger
  readonly #entry: string
  constructor(log: Logger, entry = LOCAL_AGENT_ENTRY) {
    this.#log = log
    this.#entry = entry
  }

  async launch(): Promise<AgentConnection> {
    // Node flags pass on to the agent the way child_process.fork passes them (--cpu-prof, heap limits).
    const child = spawn(process.execPath, [...process.execArgv, this.#entry], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, SNAPFERRY_AGENT_LOG_LEVEL: process.env.SNAPFERRY_AGENT_LOG_LEVEL ?? 'info' },
    })
    let stderrTail = ''
    child.stderr.setEncoding('utf8')
    child.stderr.on('data', (s: string) => {
      stderrTail = (stderrTail + s).slice(-4000)
      for (const line of s.split('\n'))
        if (line.trim()) this.#log.debug({ agent: 'local', line }, 'agent stderr')
    })
    const exited = new Promise<{ code: number | null; signal: string | null; stderrTail: string }>(
      (resolve) => {
        child.on('exit', (code, signal) => resolve({ code, signal, stderrTail }))
      },
    )
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve)
      child.once('error', (e) =>
        reject(
          new SnapferryError(
            'AGENT_START_FAILED',
            `cannot start the local agent (${this.#entry}): ${e.message}`,
            {
              cause: e,
              hint: 'run `npm run build` so dist/agents/snapferry-agent.js exists',
            },
          ),
        ),
      )
    })
    return {
      host: 'local',
      fromAgent: child.stdout,
      toAgent: child.stdin,
      exited,
      openDataChannel: (socketPath) =>
        new Promise((resolve, reject) => {
          const s = connect(socketPath)
          s.once('connect', () => resolve(s))
          s.once('error', reject)
        }),
      close: async () => {
        child.stdin.end()
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
        await exited
        clearTimeout(timer)
      },
    }
  }
}
