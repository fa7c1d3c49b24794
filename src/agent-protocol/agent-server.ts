/**
 * The agent side of the protocol: performs driver operations for the controller. Runs on the volume's
 * host (a local child process, or over SSH), reading control messages on `input`, answering on `output`.
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
import type { CompressionSetting } from '../transfer/compression-policy.js'
import { SegmentCodec } from '../transfer/segment-codec.js'
import { SegmentReceiver } from '../transfer/segment-receiver.js'
import { SegmentSender } from '../transfer/segment-sender.js'
import { VERSION } from '../version.js'
import { readHeaderLine, readJsonLines, writeJsonLine } from './ndjson.js'
import {
  AGENT_METHODS,
  type AgentMethod,
  type DataStreamHeader,
  type HelloMessage,
  PROTOCOL_VERSION,
  type RequestMessage,
  type ResponseMessage,
  type VolumeRef,
} from './protocol-messages.js'

const DATA_CONNECT_TIMEOUT_MS = 30_000
/** Unacknowledged frame bytes a sending agent keeps for re-sending (covers ~150 ms at 1.6 Gbit/s). */
export const SEND_WINDOW_BYTES = 32 << 20
/**
 * A sending agent cuts a partial segment once its first byte waited this long: small extents leave the
 * source at a few MB/s, and a whole 1 MiB segment took 480–730 ms to fill in the downtime bench's warm
 * rounds over 100 Mbit, with the destination idle. Fast streams fill a segment in a few ms and never hit it.
 */
export const SEGMENT_AGE_MS = 25
/**
 * Verified delta bytes an import holds before pausing the link. An rbd apply reads nothing for its first
 * ~0.9 s (destination state, head guard, marker: one rbd process each); with only a few MiB of buffer
 * the link idles meanwhile, and inside a cutover window that idle time is downtime. Bounded, so memory
 * stays flat: at most this much per volume being imported.
 */
export const RECEIVE_BUFFER_BYTES = 32 << 20
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

/** A data connection's first line. */
type DataHeader =
  | (DataStreamHeader & { readonly from?: number })
  | { readonly attach: string; readonly pending: readonly number[] }

type Stream = { readonly sender: SegmentSender } | { readonly receiver: SegmentReceiver }

export class AgentServer {
  readonly #opts: AgentServerOptions
  readonly #drivers = new Map<string, VolumeDriver>()
  readonly #inflight = new Map<number, AbortController>()
  readonly #streams = new Map<string, Stream>()
  readonly #arrived = new Map<string, { sock: Socket; header: DataHeader }>()
  readonly #completed = new Map<number, ResponseMessage>()
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
        return this.#export(d, params, signal)
      case 'importDiff':
        return this.#import(d, params, signal)
    }
  }

  async #export(d: VolumeDriver, params: Record<string, unknown>, signal: AbortSignal): Promise<unknown> {
    const token = params.stream as string
    const label = (params.volume as VolumeRef).label
    const sender = new SegmentSender({
      codec: await SegmentCodec.create(),
      compression: (params.compression as CompressionSetting | undefined) ?? 0,
      windowBytes: SEND_WINDOW_BYTES,
      maxSegmentAgeMs: SEGMENT_AGE_MS,
      label,
      resumable: true,
      onLevelChange: (level) => this.#opts.log.debug({ volume: label, level }, 'compression level'),
    })
    const abort = () => sender.fail(signal.reason as Error)
    signal.addEventListener('abort', abort, { once: true })
    this.#register(token, { sender })
    try {
      const request = params.request as { toSnap: string }
      const result = await d.exportDiff({ ...request, signal }, sender.input)
      const stats = await sender.done
      return { ...result, ...sender.digest(), transfer: stats }
    } catch (e) {
      sender.fail(e as Error)
      throw e
    } finally {
      signal.removeEventListener('abort', abort)
      this.#streams.delete(token)
    }
  }

  async #import(d: VolumeDriver, params: Record<string, unknown>, signal: AbortSignal): Promise<unknown> {
    const token = params.stream as string
    const label = (params.volume as VolumeRef).label
    const receiver = new SegmentReceiver({
      codec: await SegmentCodec.create(),
      label,
      resumable: true,
      bufferBytes: RECEIVE_BUFFER_BYTES,
      onCorrupt: (e) => this.#opts.log.warn({ volume: label, err: e.message }, 'damaged segment refused'),
    })
    const abort = () => receiver.output.destroy(signal.reason as Error)
    signal.addEventListener('abort', abort, { once: true })
    this.#register(token, { receiver })
    try {
      const request = params.request as { toSnap: string }
      const result = await d.importDiff({ ...request, signal }, receiver.output)
      return { ...result, ...receiver.digest(), transfer: receiver.stats }
    } finally {
      signal.removeEventListener('abort', abort)
      this.#streams.delete(token)
      receiver.output.destroy()
    }
  }

  /** A stream is ready for connections; one that arrived first is handed over now. */
  #register(token: string, st: Stream): void {
    this.#streams.set(token, st)
    const early = this.#arrived.get(token)
    if (early) {
      this.#arrived.delete(token)
      this.#connect(st, early.sock, early.header)
    }
  }

  #connect(st: Stream, sock: Socket, h: DataHeader): void {
    if ('sender' in st) st.sender.attach(sock, 'from' in h && typeof h.from === 'number' ? h.from : 0)
    else st.receiver.attach(sock)
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
      if ('attach' in header) return this.#attach(s, header)
      const st = this.#streams.get(header.token)
      if (st) return this.#connect(st, s, header)
      // The request that owns this stream has not arrived yet (control and data race).
      this.#arrived.get(header.token)?.sock.destroy()
      this.#arrived.set(header.token, { sock: s, header })
      setTimeout(() => {
        if (this.#arrived.get(header.token)?.sock === s) {
          this.#arrived.delete(header.token)
          s.destroy()
        }
      }, DATA_CONNECT_TIMEOUT_MS).unref()
    } catch (e) {
      this.#opts.log.warn({ err: (e as Error).message }, 'bad data connection')
      s.destroy()
    }
  }
}

export function newStreamToken(): string {
  return randomUUID()
}
