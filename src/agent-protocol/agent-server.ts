/**
 * The agent side of the protocol: performs driver operations for the controller. Runs on the volume's
 * host (a local child process, or over SSH), reading control messages on `input`, answering on `output`.
 * Its data streams (exports and imports as segments) are agent-streams.ts.
 */
import { randomUUID } from 'node:crypto'
import { chmod, mkdtemp, rm } from 'node:fs/promises'
import { createServer, type Server, type Socket } from 'node:net'
import { hostname, tmpdir } from 'node:os'
import path from 'node:path'
import type { Readable, Writable } from 'node:stream'
import type { Logger } from 'pino'
import { createDriver } from '../drivers/driver-registry.js'
import type { VolumeDriver } from '../drivers/volume-driver.js'
import { asSnapferryError, SnapferryError } from '../errors/snapferry-error.js'
import { VERSION } from '../version.js'
import { AgentStreams, type StreamHeader } from './agent-streams.js'
import { readHeaderLine, readJsonLines, writeJsonLine } from './ndjson.js'
import {
  AGENT_METHODS,
  type AgentMethod,
  type HelloMessage,
  PROTOCOL_VERSION,
  type RequestMessage,
  type ResponseMessage,
  type VolumeRef,
} from './protocol-messages.js'

const KEEP_RESPONSES = 1000

export interface AgentServerOptions {
  readonly input: Readable
  readonly output: Writable
  readonly log: Logger
  /**
   * How long to wait for the controller to re-attach after the control stream ends without a `bye`
   * or goes silent (no message, pings included) — in-flight work waits meanwhile. 0: stop at once
   * (local child processes, whose controller cannot lose a link).
   */
  readonly lingerMs?: number
}

/** A data connection's first line: a stream's, or a controller re-attaching. */
type DataHeader = StreamHeader | { readonly attach: string; readonly pending: readonly number[] }

export class AgentServer {
  readonly #opts: AgentServerOptions
  readonly #drivers = new Map<string, VolumeDriver>()
  readonly #inflight = new Map<number, AbortController>()
  readonly #completed = new Map<number, ResponseMessage>()
  readonly #streams: AgentStreams
  readonly #session = randomUUID()
  #server: Server | undefined
  #dir: string | undefined
  #output: Writable
  #controlGen = 0
  #bye = false
  #lastHeard = performance.now()
  #stop: (() => void) | undefined

  constructor(opts: AgentServerOptions) {
    this.#opts = opts
    this.#output = opts.output
    this.#streams = new AgentStreams(opts.log)
  }

  /** Serve until the controller closes our input; resolves then. */
  async serve(): Promise<void> {
    this.#dir = await mkdtemp(path.join(tmpdir(), 'snapferry-agent-'))
    await chmod(this.#dir, 0o700)
    const socketPath = path.join(this.#dir, 'data.sock')
    this.#server = createServer((s) => void this.#onData(s))
    await new Promise<void>((resolve, reject) => {
      this.#server?.once('error', reject)
      this.#server?.listen(socketPath, resolve)
    })
    const hello: HelloMessage = {
      type: 'hello',
      protocol: PROTOCOL_VERSION,
      version: VERSION,
      pid: process.pid,
      hostname: hostname(),
      dataSocket: socketPath,
      session: this.#session,
    }
    writeJsonLine(this.#output, hello)
    const linger = this.#opts.lingerMs ?? 0
    await new Promise<void>((resolve) => {
      this.#stop = resolve
      this.#control(this.#opts.input, this.#opts.output)
      if (linger > 0) {
        const watchdog = setInterval(
          () => {
            if (performance.now() - this.#lastHeard < linger) return
            this.#opts.log.warn({ lingerMs: linger }, 'no word from the controller: stopping')
            clearInterval(watchdog)
            resolve()
          },
          Math.min(1000, linger / 4),
        )
        watchdog.unref()
      }
    })
    for (const ac of this.#inflight.values()) ac.abort(new SnapferryError('ABORTED', 'controller went away'))
    this.#server.close()
    await rm(this.#dir, { recursive: true, force: true })
  }

  /** Take control messages from `input`, answer on `output`; a newer control stream replaces it. */
  #control(input: Readable, output: Writable): void {
    const gen = ++this.#controlGen
    this.#output = output
    output.on('error', () => {})
    readJsonLines(
      input,
      (msg) => {
        if (gen !== this.#controlGen) return
        this.#lastHeard = performance.now()
        this.#onMessage(msg)
      },
      (err) => {
        if (gen !== this.#controlGen) return
        if (err) this.#opts.log.error({ err: err.message }, 'control stream failed')
        if (this.#bye || !this.#opts.lingerMs) this.#stop?.()
        else this.#opts.log.warn('control stream lost: waiting for the controller to re-attach')
      },
    )
  }

  /** The controller re-attached over a data connection: answer which of its requests we never saw. */
  #attach(sock: Socket, h: { attach: string; pending: readonly number[] }): void {
    if (h.attach !== this.#session) {
      writeJsonLine(sock, { attached: false, reason: 'unknown session' })
      sock.end()
      return
    }
    const unknown = h.pending.filter((id) => !this.#inflight.has(id) && !this.#completed.has(id))
    writeJsonLine(sock, { attached: true, unknown })
    this.#opts.log.info({ pending: h.pending.length, unknown: unknown.length }, 'controller re-attached')
    this.#lastHeard = performance.now()
    this.#control(sock, sock)
    for (const id of h.pending) {
      const r = this.#completed.get(id)
      if (r) writeJsonLine(sock, r)
    }
  }

  #send(res: ResponseMessage): void {
    this.#completed.set(res.id, res)
    if (this.#completed.size > KEEP_RESPONSES) {
      const oldest = this.#completed.keys().next().value
      if (oldest !== undefined) this.#completed.delete(oldest)
    }
    writeJsonLine(this.#output, res)
  }

  #onMessage(msg: unknown): void {
    const m = msg as { type?: string; id?: number }
    if (m.type === 'ping') return
    if (m.type === 'bye') {
      this.#bye = true
      return
    }
    if (m.type === 'cancel' && typeof m.id === 'number') {
      this.#inflight.get(m.id)?.abort(new SnapferryError('ABORTED', 'cancelled by the controller'))
      return
    }
    if (m.type !== 'request' || typeof m.id !== 'number') {
      this.#opts.log.warn({ msg }, 'ignoring unknown control message')
      return
    }
    // A request re-sent after a re-attach that we did see already: its answer comes (or came) anyway.
    if (this.#inflight.has(m.id) || this.#completed.has(m.id)) return
    void this.#handle(msg as RequestMessage)
  }

  async #handle(req: RequestMessage): Promise<void> {
    const ac = new AbortController()
    this.#inflight.set(req.id, ac)
    const t0 = performance.now()
    let res: ResponseMessage
    try {
      if (!(AGENT_METHODS as readonly string[]).includes(req.method)) {
        throw new SnapferryError('AGENT_PROTOCOL', `unknown method '${req.method}'`, {
          hint: 'the controller and agent versions differ: install the same snapferry version on both',
        })
      }
      const result = await this.#dispatch(req.method, req.params, ac.signal)
      res = { type: 'response', id: req.id, result }
    } catch (e) {
      const err = asSnapferryError(e)
      this.#opts.log.warn({ method: req.method, code: err.code, err: err.message }, 'request failed')
      res = { type: 'response', id: req.id, error: err.toJSON() }
    } finally {
      this.#inflight.delete(req.id)
    }
    this.#opts.log.debug({ method: req.method, ms: Math.round(performance.now() - t0) }, 'request done')
    this.#send(res)
  }

  async #dispatch(
    method: AgentMethod,
    params: Record<string, unknown>,
    signal: AbortSignal,
  ): Promise<unknown> {
    const d = this.#driver(params.volume as VolumeRef)
    switch (method) {
      case 'describe':
        return { info: await d.describe(signal), capabilities: d.capabilities }
      case 'listSnapshots':
        return d.listSnapshots(signal)
      case 'createSnapshot':
        return d.createSnapshot(params.name as string, signal)
      case 'deleteSnapshot':
        return d.deleteSnapshot(params.name as string, signal)
      case 'checkHead':
        return d.checkHead(params.snapshot as string, signal)
      case 'headChangesSince':
        return d.headChangesSince(params.snapshot as string, signal)
      case 'checksum':
        return d.checksum(params.at as 'head', signal)
      case 'recordDigest':
        return d.recordDigest ? d.recordDigest(params.snapshot as string, signal) : null
      case 'estimateDiff':
        return d.estimateDiff ? d.estimateDiff(params.fromSnap as string | undefined, signal) : null
      case 'exportDiff':
        return this.#streams.export(d, params, signal)
      case 'importDiff':
        return this.#streams.import(d, params, signal)
    }
  }

  #driver(ref: VolumeRef): VolumeDriver {
    if (!ref?.endpoint) throw new SnapferryError('AGENT_PROTOCOL', 'request names no volume')
    const key = JSON.stringify(ref.endpoint)
    let d = this.#drivers.get(key)
    if (!d) {
      d = createDriver(ref.endpoint, ref.label)
      this.#drivers.set(key, d)
    }
    return d
  }

  async #onData(s: Socket): Promise<void> {
    s.on('error', () => {})
    try {
      const header = (await readHeaderLine(s)) as DataHeader
      if ('attach' in header) this.#attach(s, header)
      else this.#streams.connect(s, header)
    } catch (e) {
      this.#opts.log.warn({ err: (e as Error).message }, 'bad data connection')
      s.destroy()
    }
  }
}
