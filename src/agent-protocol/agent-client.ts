/**
 * The controller's end of the agent protocol: handshake, request/response correlation, data channels,
 * and — for transports that can lose their link — re-attaching to the same agent: requests in flight
 * survive a dropped connection (the agent keeps working and keeps its answers until asked again).
 */
import type { Duplex, Readable, Writable } from 'node:stream'
import { SnapferryError } from '../errors/snapferry-error.js'
import type { Logger } from '../logging/logger.js'
import type { AgentConnection } from '../transports/agent-connection.js'
import { VERSION } from '../version.js'
import { readHeaderLine, readJsonLines, writeJsonLine } from './ndjson.js'
import {
  type AgentMessage,
  type AgentMethod,
  type HelloMessage,
  PROTOCOL_VERSION,
  type RequestMessage,
  type ResponseMessage,
} from './protocol-messages.js'

const HELLO_TIMEOUT_MS = 30_000
const ATTACH_TIMEOUT_MS = 15_000

interface Pending {
  resolve(v: unknown): void
  reject(e: Error): void
  readonly msg: RequestMessage
}

export class AgentClient {
  readonly hello: HelloMessage
  readonly #conn: AgentConnection
  readonly #log: Logger | undefined
  readonly #pending = new Map<number, Pending>()
  #nextId = 1
  #closed: Error | undefined
  #toAgent: Writable
  #gen = 0
  #up: Promise<void> = Promise.resolve()
  #recovering = false
  #closing = false
  readonly #ping: NodeJS.Timeout | undefined

  private constructor(conn: AgentConnection, hello: HelloMessage, log: Logger | undefined) {
    this.#conn = conn
    this.hello = hello
    this.#log = log
    this.#toAgent = conn.toAgent
    const r = conn.resilience
    if (r) {
      this.#ping = setInterval(() => {
        if (!this.#recovering && !this.#closed) writeJsonLine(this.#toAgent, { type: 'ping' })
      }, r.pingMs)
      this.#ping.unref()
    }
  }

  get host(): string {
    return this.#conn.host
  }

  /** Wait for the agent's hello and check that it speaks our protocol and version. */
  static async connect(conn: AgentConnection, log?: Logger): Promise<AgentClient> {
    const early: AgentMessage[] = []
    let client: AgentClient | undefined
    const hello = await new Promise<HelloMessage>((resolve, reject) => {
      const rejectAndClose = (e: Error) => {
        // Never leave the transport open behind a failed start (an SSH connection keeps us alive).
        void conn.close().then(
          () => reject(e),
          () => reject(e),
        )
      }
      const timer = setTimeout(
        () =>
          rejectAndClose(
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
          } else if (client) client.#onMessage(m)
          else early.push(m)
        },
        (err) => {
          clearTimeout(timer)
          if (!client) {
            void conn.exited.then((x) =>
              rejectAndClose(
                x.code === 127
                  ? new SnapferryError(
                      'AGENT_NOT_INSTALLED',
                      `no snapferry agent on ${conn.host}: ${x.stderrTail.trim().slice(-500)}`,
                      {
                        hint: 'install snapferry on that host (npm install -g snapferry), or point transport.ssh.agentCommand at it',
                      },
                    )
                  : new SnapferryError(
                      'AGENT_START_FAILED',
                      `agent on ${conn.host} exited before its hello (code ${x.code}): ${x.stderrTail.trim().slice(-500)}`,
                      {
                        hint: 'run `snapferry-agent` on that host by hand to see why it does not start',
                      },
                    ),
              ),
            )
          } else client.#lost(0, err)
        },
      )
    })
    if (hello.protocol !== PROTOCOL_VERSION || hello.version !== VERSION) {
      await conn.close()
      throw new SnapferryError(
        'AGENT_VERSION_MISMATCH',
        `agent on ${conn.host} is snapferry ${hello.version} (protocol ${hello.protocol}); this controller is ${VERSION} (protocol ${PROTOCOL_VERSION})`,
        { hint: `install snapferry ${VERSION} on ${conn.host} (npm install -g snapferry@${VERSION})` },
      )
    }
    client = new AgentClient(conn, hello, log)
    for (const m of early) client.#onMessage(m)
    return client
  }

  #onMessage(m: AgentMessage): void {
    if (m.type !== 'response') return
    const p = this.#pending.get(m.id)
    if (!p) return
    this.#pending.delete(m.id)
    const r = m as ResponseMessage
    if (r.error) p.reject(SnapferryError.fromJSON(r.error))
    else p.resolve(r.result)
  }

  #fail(e: Error): void {
    this.#closed = e
    if (this.#ping) clearInterval(this.#ping)
    for (const p of this.#pending.values()) p.reject(e)
    this.#pending.clear()
  }

  /** The control stream of generation `gen` ended: re-attach if the transport allows, else fail. */
  #lost(gen: number, err?: Error): void {
    if (gen !== this.#gen || this.#closing || this.#closed) return
    if (!this.#conn.reconnect || !this.#conn.resilience) {
      this.#fail(
        new SnapferryError(
          'AGENT_EXITED',
          `agent on ${this.host} closed its control stream${err ? `: ${err.message}` : ''}`,
          { transient: true, cause: err },
        ),
      )
      return
    }
    this.#recovering = true
    this.#log?.warn({ host: this.host, err: err?.message }, 'lost the connection to the agent: reconnecting')
    this.#up = this.#recover(this.#conn.resilience.windowMs)
    this.#up.catch(() => {})
  }

  async #recover(windowMs: number): Promise<void> {
    const deadline = performance.now() + windowMs
    let delay = 250
    let last: Error | undefined
    for (let attempt = 1; performance.now() < deadline && !this.#closing; attempt++) {
      try {
        await this.#conn.reconnect?.()
        const ch = await this.#conn.openDataChannel(this.hello.dataSocket)
        writeJsonLine(ch, { attach: this.hello.session, pending: [...this.#pending.keys()] })
        const ans = (await withTimeout(readHeaderLine(ch), ATTACH_TIMEOUT_MS, 'no answer to re-attach')) as {
          attached: boolean
          unknown?: number[]
          reason?: string
        }
        if (!ans.attached) {
          const e = new SnapferryError(
            'AGENT_EXITED',
            `the agent on ${this.host} is gone (${ans.reason ?? 'refused the re-attach'}): its work in flight was lost`,
            { transient: true, hint: 'run again: the next run resumes from both sides’ snapshots' },
          )
          this.#fail(e)
          throw e
        }
        this.#useControl(ch, ch)
        for (const id of ans.unknown ?? []) {
          const p = this.#pending.get(id)
          if (p) writeJsonLine(this.#toAgent, p.msg)
        }
        this.#recovering = false
        this.#log?.info({ host: this.host, attempt }, 're-attached to the agent')
        return
      } catch (e) {
        if (this.#closed) throw this.#closed
        last = e as Error
        this.#log?.debug({ host: this.host, attempt, err: last.message }, 're-attach failed')
        await new Promise((r) => setTimeout(r, delay))
        delay = Math.min(delay * 2, 5000)
      }
    }
    const e = new SnapferryError(
      'LINK_LOST',
      `lost the connection to the agent on ${this.host} and could not re-attach within ${Math.round(windowMs / 1000)} s${last ? ` (last: ${last.message})` : ''}`,
      {
        transient: true,
        cause: last,
        hint: `check the network path to ${this.host}; run again to resume (or raise transport.ssh.reconnectWindow)`,
      },
    )
    this.#fail(e)
    throw e
  }

  #useControl(fromAgent: Readable, toAgent: Writable): void {
    const gen = ++this.#gen
    this.#toAgent = toAgent
    toAgent.on('error', () => {})
    readJsonLines(
      fromAgent,
      (m) => {
        if (gen === this.#gen) this.#onMessage(m as AgentMessage)
      },
      (err) => this.#lost(gen, err),
    )
  }

  /** Resolves when the agent is reachable (at once, unless a re-attach is under way). */
  whenConnected(): Promise<void> {
    if (this.#closed) return Promise.reject(this.#closed)
    return this.#up
  }

  call<T>(method: AgentMethod, params: Record<string, unknown>, signal?: AbortSignal): Promise<T> {
    if (this.#closed) return Promise.reject(this.#closed)
    // Sent after an abort, a request would never be cancelled (the listener fires only once, before).
    if (signal?.aborted) return Promise.reject(signal.reason)
    const id = this.#nextId++
    const msg: RequestMessage = { type: 'request', id, method, params }
    const onAbort = () => {
      if (this.#pending.has(id) && !this.#recovering) writeJsonLine(this.#toAgent, { type: 'cancel', id })
    }
    signal?.addEventListener('abort', onAbort, { once: true })
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject, msg })
      // While re-attaching, the request waits: the re-attach sends every request the agent lacks.
      if (!this.#recovering) writeJsonLine(this.#toAgent, msg)
    }).finally(() => signal?.removeEventListener('abort', onAbort))
  }

  /** A new data channel to the agent, already announced with its header line. */
  async openData(header: Record<string, unknown>): Promise<Duplex> {
    await this.whenConnected()
    const ch = await this.#conn.openDataChannel(this.hello.dataSocket)
    ch.write(`${JSON.stringify(header)}\n`)
    return ch
  }

  async close(): Promise<void> {
    this.#closing = true
    if (!this.#closed && !this.#recovering) writeJsonLine(this.#toAgent, { type: 'bye' })
    this.#fail(new SnapferryError('ABORTED', `connection to the agent on ${this.host} was closed`))
    this.#toAgent.end()
    await this.#conn.close()
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${what} within ${ms / 1000} s`)), ms)
    p.then(
      (v) => {
        clearTimeout(t)
        resolve(v)
      },
      (e) => {
        clearTimeout(t)
        reject(e)
      },
    )
  })
}
