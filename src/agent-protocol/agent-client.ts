/** The controller's end of the agent protocol: handshake, request/response correlation, data channels. */
import type { Duplex } from 'node:stream'
import { SnapferryError } from '../errors/snapferry-error.js'
import type { AgentConnection } from '../transports/agent-connection.js'
import { VERSION } from '../version.js'
import { readJsonLines, writeJsonLine } from './ndjson.js'
import {
  type AgentMessage,
  type AgentMethod,
  type HelloMessage,
  PROTOCOL_VERSION,
  type ResponseMessage,
} from './protocol-messages.js'

const HELLO_TIMEOUT_MS = 30_000

interface Pending {
  resolve(v: unknown): void
  reject(e: Error): void
  method: AgentMethod
}

export class AgentClient {
  readonly hello: HelloMessage
  readonly #conn: AgentConnection
  readonly #pending = new Map<number, Pending>()
  #nextId = 1
  #closed: Error | undefined

  private constructor(conn: AgentConnection, hello: HelloMessage) {
    this.#conn = conn
    this.hello = hello
  }

  get host(): string {
    return this.#conn.host
  }

  /** Wait for the agent's hello and check that it speaks our protocol and version. */
  static async connect(conn: AgentConnection): Promise<AgentClient> {
    let client: AgentClient | undefined
    const hello = await new Promise<HelloMessage>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new SnapferryError(
              'AGENT_START_FAILED',
              `agent on ${conn.host} did not say hello within ${HELLO_TIMEOUT_MS / 1000} s`,
            ),
          ),
        HELLO_TIMEOUT_MS,
      )
      readJsonLines(
        conn.fromAgent,
        (msg) => {
          const m = msg as AgentMessage
          if (m.type === 'hello' && !client) {
            clearTimeout(timer)
            resolve(m)
          } else client?.onMessage(m)
        },
        (err) => {
          clearTimeout(timer)
          const gone = new SnapferryError(
            'AGENT_EXITED',
            `agent on ${conn.host} closed its control stream${err ? `: ${err.message}` : ''}`,
            {
              transient: true,
              cause: err,
            },
          )
          if (!client) {
            void conn.exited.then((x) =>
              reject(
                new SnapferryError(
                  'AGENT_START_FAILED',
                  `agent on ${conn.host} exited before its hello (code ${x.code}): ${x.stderrTail.trim().slice(-500)}`,
                  {
                    hint: 'run `snapferry-agent` on that host by hand to see why it does not start',
                  },
                ),
              ),
            )
          } else client.fail(gone)
        },
      )
    })
    if (hello.protocol !== PROTOCOL_VERSION || hello.version !== VERSION) {
      await conn.close()
      throw new SnapferryError(
        'AGENT_VERSION_MISMATCH',
        `agent on ${conn.host} is snapferry ${hello.version} (protocol ${hello.protocol}); this controller is ${VERSION} (protocol ${PROTOCOL_VERSION})`,
        { hint: `install snapferry ${VERSION} on ${conn.host}` },
      )
    }
    client = new AgentClient(conn, hello)
    return client
  }

  onMessage(m: AgentMessage): void {
    if (m.type !== 'response') return
    const p = this.#pending.get(m.id)
    if (!p) return
    this.#pending.delete(m.id)
    const r = m as ResponseMessage
    if (r.error) p.reject(SnapferryError.fromJSON(r.error))
    else p.resolve(r.result)
  }

  fail(e: Error): void {
    this.#closed = e
    for (const p of this.#pending.values()) p.reject(e)
    this.#pending.clear()
  }

  call<T>(method: AgentMethod, params: Record<string, unknown>, signal?: AbortSignal): Promise<T> {
    if (this.#closed) return Promise.reject(this.#closed)
    const id = this.#nextId++
    const onAbort = () => {
      if (this.#pending.has(id)) writeJsonLine(this.#conn.toAgent, { type: 'cancel', id })
    }
    signal?.addEventListener('abort', onAbort, { once: true })
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject, method })
      writeJsonLine(this.#conn.toAgent, { type: 'request', id, method, params })
    }).finally(() => signal?.removeEventListener('abort', onAbort))
  }

  /** A new data channel, already announced with its stream token. */
  async openData(token: string): Promise<Duplex> {
    const ch = await this.#conn.openDataChannel(this.hello.dataSocket)
    ch.write(`${JSON.stringify({ token })}\n`)
    return ch
  }

  async close(): Promise<void> {
    this.fail(new SnapferryError('ABORTED', `connection to the agent on ${this.host} was closed`))
    await this.#conn.close()
  }
}
