/**
 * The sending end of a delta: raw "rbd diff" bytes in, verified-by-the-receiver frames out.
 * Frames stay retained until the receiver acknowledges them, so a new connection (after a dropped
 * link, or after the receiver refused a damaged segment) resumes from the first segment the receiver
 * lacks, without re-reading the volume. The retained bytes are bounded by `windowBytes`: when full,
 * the producer waits (backpressure), so memory stays flat whatever the delta's size.
 */
import { type Duplex, Writable } from 'node:stream'
import { readJsonLines } from '../agent-protocol/ndjson.js'
import type { StreamDigest } from '../agent-protocol/protocol-messages.js'
import { SnapferryError } from '../errors/snapferry-error.js'
import { CompressionPolicy, type CompressionSetting } from './compression-policy.js'
import type { SegmentCodec } from './segment-codec.js'
import { SEGMENT_BYTES } from './segment-frame.js'
import { StreamDigestChain } from './stream-digest.js'

export interface SenderOptions {
  readonly codec: SegmentCodec
  readonly compression: CompressionSetting
  readonly maxLevel?: number
  /** Unacknowledged bytes kept for re-sending; the producer waits beyond this. */
  readonly windowBytes: number
  /** For messages: "volume root". */
  readonly label: string
  /** A connection that closes before the end fails the stream instead of waiting for another. */
  readonly resumable: boolean
  readonly onLevelChange?: (level: number) => void
  /** Cut a segment once its first byte waited this long, full or not (why: SEGMENT_AGE_MS, agent-streams.ts). */
  readonly maxSegmentAgeMs?: number
}

export interface SenderStats {
  segments: number
  rawBytes: number
  /** Frame bytes written, headers included, re-sent frames counted again. */
  wireBytes: number
  resentFrames: number
  connections: number
  compressMs: number
  /** Time the producer waited for the window or the connection: the link or the receiver was slower. */
  blockedMs: number
  /** Time from taking a chunk to the producer's next one: the source (export) was slower. */
  idleMs: number
  /** Raw bytes sent per zstd level (0: raw). */
  rawByLevel: Record<string, number>
}

interface Retained {
  readonly seq: number
  readonly header: Buffer
  readonly payload: Buffer
}

/** Control lines the receiver writes back on the data connection. */
export interface ReceiverLine {
  readonly next?: number
  readonly ack?: number
  readonly nack?: number
  readonly reason?: string
}

export class SegmentSender {
  readonly input: Writable
  readonly stats: SenderStats = {
    segments: 0,
    rawBytes: 0,
    wireBytes: 0,
    resentFrames: 0,
    connections: 0,
    compressMs: 0,
    blockedMs: 0,
    idleMs: 0,
    rawByLevel: {},
  }
  #releasedAt = 0
  readonly done: Promise<SenderStats>
  readonly #o: SenderOptions
  readonly #policy: CompressionPolicy
  readonly #chain = new StreamDigestChain()
  #parts: Buffer[] = []
  #partBytes = 0
  #ageTimer: NodeJS.Timeout | undefined
  #retained: Retained[] = []
  #retainedBytes = 0
  #nextSeq = 0
  #endSeq: number | undefined
  #conn: Duplex | undefined
  #sendAt = 0
  #maxSent = -1
  #waiting: (() => void) | undefined
  #waitStart = 0
  #lastWaitMs = 0
  #resolve!: (s: SenderStats) => void
  #reject!: (e: Error) => void
  #failed: Error | undefined

  constructor(o: SenderOptions) {
    this.#o = o
    this.#policy = new CompressionPolicy(o.compression, o.maxLevel)
    this.done = new Promise((res, rej) => {
      this.#resolve = res
      this.#reject = rej
    })
    this.done.catch(() => {})
    this.input = new Writable({
      highWaterMark: SEGMENT_BYTES,
      write: (chunk: Buffer, _e, cb) => this.#write(chunk, cb),
      final: (cb) => this.#final(cb),
      destroy: (err, cb) => {
        if (err) this.fail(err)
        cb(err)
      },
    })
  }

  /** Proof of the raw bytes cut into segments so far (all of them once `done` resolved). */
  digest(): StreamDigest {
    return this.#chain.digest()
  }

  /** A (new) connection to the receiver, which lacks segments from `from` on. */
  attach(conn: Duplex, from: number): void {
    if (this.#failed) {
      conn.destroy()
      return
    }
    this.#detach()
    const first = this.#retained[0]?.seq ?? this.#nextSeq
    if (from < first || from > this.#nextSeq) {
      conn.destroy()
      this.fail(
        new SnapferryError(
          'AGENT_PROTOCOL',
          `receiver of ${this.#o.label} asks for segment ${from}, but only ${first}–${this.#nextSeq} can be sent`,
        ),
      )
      return
    }
    this.#ack(from)
    this.stats.connections++
    this.#conn = conn
    this.#sendAt = from
    conn.on('error', () => {})
    conn.on('drain', () => this.#pump())
    readJsonLines(
      conn,
      (m) => this.#onLine(m as ReceiverLine),
      () => {
        if (this.#conn !== conn) return
        this.#conn = undefined
        if (!this.#o.resumable) this.#lostForGood()
      },
    )
    this.#pump()
  }

  fail(e: Error): void {
    if (this.#failed) return
    this.#failed = e
    clearTimeout(this.#ageTimer)
    this.#detach()
    this.#retained = []
    this.#retainedBytes = 0
    this.#release()
    this.#reject(e)
    this.input.destroy()
  }

  #lostForGood(): void {
    this.fail(
      new SnapferryError('TRANSFER_ABORTED', `the data connection for ${this.#o.label} closed early`, {
        transient: true,
      }),
    )
  }

  #detach(): void {
    const c = this.#conn
    this.#conn = undefined
    c?.destroy()
  }

  #onLine(m: ReceiverLine): void {
    if (typeof m.ack === 'number') this.#ack(m.ack)
    // A nack comes with the receiver closing the connection: the next attach re-sends from there.
  }

  /** Everything before `next` is verified by the receiver: forget it. */
  #ack(next: number): void {
    while (this.#retained.length > 0 && (this.#retained[0] as Retained).seq < next) {
      const r = this.#retained.shift() as Retained
      this.#retainedBytes -= r.header.length + r.payload.length
    }
    if (this.#endSeq !== undefined && next > this.#endSeq) {
      this.#detach()
      this.#resolve(this.stats)
      return
    }
    this.#release()
  }

  #write(chunk: Buffer, cb: (e?: Error | null) => void): void {
    if (this.#releasedAt > 0) this.stats.idleMs += performance.now() - this.#releasedAt
    if (this.#failed) {
      cb(this.#failed)
      return
    }
    let at = 0
    while (at < chunk.length) {
      const take = Math.min(SEGMENT_BYTES - this.#partBytes, chunk.length - at)
      this.#parts.push(chunk.subarray(at, at + take))
      this.#partBytes += take
      at += take
      if (this.#partBytes === SEGMENT_BYTES) this.#cut()
    }
    if (this.#partBytes > 0 && !this.#ageTimer && this.#o.maxSegmentAgeMs !== undefined) {
      this.#ageTimer = setTimeout(() => {
        this.#ageTimer = undefined
        // fail() and every cut clear the timer, so bytes still waiting here are a segment to send.
        if (this.#partBytes > 0) this.#cut()
      }, this.#o.maxSegmentAgeMs)
      this.#ageTimer.unref()
    }
    this.#whenRoom(cb)
  }

  #final(cb: (e?: Error | null) => void): void {
    if (this.#failed) {
      cb(this.#failed)
      return
    }
    if (this.#partBytes > 0) this.#cut()
    const seq = this.#nextSeq++
    this.#endSeq = seq
    const header = this.#o.codec.endFrame(seq)
    this.#retain({ seq, header, payload: Buffer.alloc(0) })
    this.#pump()
    cb()
  }

  /** Make the next frame from the collected raw bytes. */
  #cut(): void {
    clearTimeout(this.#ageTimer)
    this.#ageTimer = undefined
    // Copy: the producer may reuse its buffers, and a retained frame may be sent again later.
    const raw = this.#parts.length === 1 ? Buffer.from(this.#parts[0] as Buffer) : Buffer.concat(this.#parts)
    this.#parts = []
    this.#partBytes = 0
    const level = this.#policy.level
    const f = this.#o.codec.frame(this.#nextSeq, raw, level)
    this.stats.segments++
    this.stats.rawBytes += raw.length
    this.stats.compressMs += f.compressMs
    this.#chain.add(f.hash, raw.length)
    const used = String(f.header[7] ?? 0)
    this.stats.rawByLevel[used] = (this.stats.rawByLevel[used] ?? 0) + raw.length
    this.#policy.observe({
      rawBytes: raw.length,
      wireBytes: f.payload.length,
      compressMs: f.compressMs,
      waitMs: this.#lastWaitMs,
    })
    this.#lastWaitMs = 0
    if (this.#policy.level !== level) this.#o.onLevelChange?.(this.#policy.level)
    this.#retain({ seq: this.#nextSeq++, header: f.header, payload: f.payload })
    this.#pump()
  }

  #retain(r: Retained): void {
    this.#retained.push(r)
    this.#retainedBytes += r.header.length + r.payload.length
  }

  /** Write retained frames from #sendAt while the connection takes them. */
  #pump(): void {
    const c = this.#conn
    if (!c) return
    const first = this.#retained[0]?.seq ?? this.#nextSeq
    while (this.#sendAt < this.#nextSeq && !c.writableNeedDrain) {
      const r = this.#retained[this.#sendAt - first]
      if (!r) break
      this.#sendAt++
      if (r.seq <= this.#maxSent) this.stats.resentFrames++
      else this.#maxSent = r.seq
      this.stats.wireBytes += r.header.length + r.payload.length
      c.write(r.header)
      if (r.payload.length > 0) c.write(r.payload)
    }
    this.#release()
  }

  /** Let the producer go on once the window has room and the connection is not backed up. */
  #whenRoom(cb: () => void): void {
    this.#waiting = cb
    this.#waitStart = performance.now()
    this.#release()
  }

  #release(): void {
    if (!this.#waiting) return
    const backedUp = this.#conn ? this.#conn.writableNeedDrain : true
    if (
      !this.#failed &&
      (this.#retainedBytes > this.#o.windowBytes || (backedUp && this.#sendAt < this.#nextSeq))
    )
      return
    const cb = this.#waiting
    this.#waiting = undefined
    const now = performance.now()
    this.#lastWaitMs += now - this.#waitStart
    this.stats.blockedMs += now - this.#waitStart
    this.#releasedAt = now
    cb()
  }
}
