/**
 * The agent side of the protocol: performs driver operations for the controller. Runs on the volume's
 * host (a local child process, or over SSH), reading control messages on `input`, answering on `output`.
 */
import { createHash, randomUUID } from 'node:crypto'
import { chmod, mkdtemp, rm } from 'node:fs/promises'
import { createServer, type Server, type Socket } from 'node:net'
import { hostname, tmpdir } from 'node:os'
import path from 'node:path'
import { PassThrough, type Readable, Transform, type Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { Logger } from 'pino'
import { createDriver } from '../drivers/driver-registry.js'
import type { VolumeDriver } from '../drivers/volume-driver.js'
import { asSnapferryError, SnapferryError } from '../errors/snapferry-error.js'
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
  type StreamDigest,
  type VolumeRef,
} from './protocol-messages.js'

const DATA_CONNECT_TIMEOUT_MS = 30_000

export interface AgentServerOptions {
  readonly input: Readable
  readonly output: Writable
  readonly log: Logger
}

export class AgentServer {
  readonly #opts: AgentServerOptions
  readonly #drivers = new Map<string, VolumeDriver>()
  readonly #inflight = new Map<number, AbortController>()
  readonly #waiting = new Map<string, (s: Socket) => void>()
  readonly #arrived = new Map<string, Socket>()
  #server: Server | undefined
  #dir: string | undefined

  constructor(opts: AgentServerOptions) {
    this.#opts = opts
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
    }
    writeJsonLine(this.#opts.output, hello)
    await new Promise<void>((resolve) => {
      readJsonLines(
        this.#opts.input,
        (msg) => this.#onMessage(msg),
        (err) => {
          if (err) this.#opts.log.error({ err }, 'control stream failed')
          resolve()
        },
      )
    })
    for (const ac of this.#inflight.values()) ac.abort(new SnapferryError('ABORTED', 'controller went away'))
    this.#server.close()
    await rm(this.#dir, { recursive: true, force: true })
  }

  #onMessage(msg: unknown): void {
    const m = msg as { type?: string; id?: number }
    if (m.type === 'cancel' && typeof m.id === 'number') {
      this.#inflight.get(m.id)?.abort(new SnapferryError('ABORTED', 'cancelled by the controller'))
      return
    }
    if (m.type !== 'request' || typeof m.id !== 'number') {
      this.#opts.log.warn({ msg }, 'ignoring unknown control message')
      return
    }
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
    writeJsonLine(this.#opts.output, res)
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
    const sock = await this.#dataConnection(params.stream as string, signal)
    const { tap, digest } = digestTap()
    const out = new PassThrough({ highWaterMark: 1 << 20 })
    const sending = pipeline(out, tap, sock)
    try {
      const result = await d.exportDiff(
        { ...(params.request as object), toSnap: (params.request as { toSnap: string }).toSnap, signal },
        out,
      )
      await sending
      return { ...result, ...digest() }
    } catch (e) {
      sock.destroy()
      sending.catch(() => {})
      throw e
    }
  }

  async #import(d: VolumeDriver, params: Record<string, unknown>, signal: AbortSignal): Promise<unknown> {
    const sock = await this.#dataConnection(params.stream as string, signal)
    const { tap, digest } = digestTap()
    sock.pipe(tap)
    sock.on('error', (e) => tap.destroy(e))
    try {
      const result = await d.importDiff(
        { ...(params.request as object), toSnap: (params.request as { toSnap: string }).toSnap, signal },
        tap,
      )
      return { ...result, ...digest() }
    } finally {
      sock.destroy()
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

  /** The data connection the controller opened (or will open) for `token`. */
  #dataConnection(token: string, signal: AbortSignal): Promise<Socket> {
    const ready = this.#arrived.get(token)
    if (ready) {
      this.#arrived.delete(token)
      return Promise.resolve(ready)
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(token)
        reject(
          new SnapferryError(
            'AGENT_PROTOCOL',
            `no data connection arrived for stream ${token} within ${DATA_CONNECT_TIMEOUT_MS / 1000} s`,
            { transient: true },
          ),
        )
      }, DATA_CONNECT_TIMEOUT_MS)
      signal.addEventListener('abort', () => {
        clearTimeout(timer)
        this.#waiting.delete(token)
        reject(signal.reason)
      })
      this.#waiting.set(token, (s) => {
        clearTimeout(timer)
        resolve(s)
      })
    })
  }

  async #onData(s: Socket): Promise<void> {
    s.on('error', () => {})
    try {
      const header = (await readHeaderLine(s)) as DataStreamHeader
      const waiter = this.#waiting.get(header.token)
      if (waiter) {
        this.#waiting.delete(header.token)
        waiter(s)
      } else {
        this.#arrived.set(header.token, s)
        setTimeout(() => {
          if (this.#arrived.get(header.token) === s) {
            this.#arrived.delete(header.token)
            s.destroy()
          }
        }, DATA_CONNECT_TIMEOUT_MS).unref()
      }
    } catch (e) {
      this.#opts.log.warn({ err: (e as Error).message }, 'bad data connection')
      s.destroy()
    }
  }
}

/** A pass-through that hashes what flows: the digest proves which bytes crossed the wire. */
export function digestTap(): { tap: Transform; digest: () => StreamDigest } {
  const h = createHash('sha256')
  let bytes = 0
  const tap = new Transform({
    highWaterMark: 1 << 20,
    transform(chunk: Buffer, _enc, cb) {
      h.update(chunk)
      bytes += chunk.length
      cb(null, chunk)
    },
  })
  return { tap, digest: () => ({ streamSha256: h.copy().digest('hex'), streamBytes: bytes }) }
}

export function newStreamToken(): string {
  return randomUUID()
}
