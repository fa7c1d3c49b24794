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
import type { CompressionSetting } from './compression-policy.js'
import type { SegmentCodec } from './segment-codec.js'
import { SegmentCutter } from './segment-cutter.js'
import { SEGMENT_BYTES } from './segment-frame.js'

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
  readonly done: Promise<SenderStats>
  readonly #o: SenderOptions
  readonly #cutter: SegmentCutter
  #retained: Retained[] = []
  #retainedBytes = 0
  #endSeq: number | undefined
  #conn: Duplex | undefined
  #sendAt = 0
  #maxSent = -1
  #waiting: (() => void) | undefined
  #waitStart = 0
  #releasedAt = 0
  #resolve!: (s: SenderStats) => void
  #reject!: (e: Error) => void
  #failed: Error | undefined

  constructor(o: SenderOptions) {
    this.#o = o
    this.#cutter = new SegmentCutter({
      codec: o.codec,
      compression: o.compression,
      maxLevel: o.maxLevel,
      maxAgeMs: o.maxSegmentAgeMs,
      stats: this.stats,
      onLevelChange: o.onLevelChange,
      onFrame: (seq, header, payload) => {
        this.#retain({ seq, header, payload })
        this.#pump()
      },
    })
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
    return this.#cutter.digest()
  }

  /** A (new) connection to the receiver, which lacks segments from `from` on. */
  attach(conn: Duplex, from: number): void {
    if (this.#failed) {
      conn.destroy()
      return
    }
    this.#detach()
    const first = this.#retained[0]?.seq ?? this.#cutter.nextSeq
    if (from < first || from > this.#cutter.nextSeq) {
      conn.destroy()
      this.fail(
        new SnapferryError(
          'AGENT_PROTOCOL',
          `receiver of ${this.#o.label} asks for segment ${from}, but only ${first}–${this.#cutter.nextSeq} can be sent`,
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
    this.#cutter.stop()
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
    this.#cutter.push(chunk)
    this.#whenRoom(cb)
  }

  #final(cb: (e?: Error | null) => void): void {
    if (this.#failed) {
      cb(this.#failed)
      return
    }
    this.#endSeq = this.#cutter.end()
    cb()
  }

  #retain(r: Retained): void {
    this.#retained.push(r)
    this.#retainedBytes += r.header.length + r.payload.length
  }

  /** Write retained frames from #sendAt while the connection takes them. */
  #pump(): void {
    const c = this.#conn
    if (!c) return
    const first = this.#retained[0]?.seq ?? this.#cutter.nextSeq
    while (this.#sendAt < this.#cutter.nextSeq && !c.writableNeedDrain) {
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
      (this.#retainedBytes > this.#o.windowBytes || (backedUp && this.#sendAt < this.#cutter.nextSeq))
    )
      return
    const cb = this.#waiting
    this.#waiting = undefined
    const now = performance.now()
    this.#cutter.waited(now - this.#waitStart)
    this.stats.blockedMs += now - this.#waitStart
    this.#releasedAt = now
    cb()
  }
}
