/**
 * The receiving end of a delta: frames in, verified raw "rbd diff" bytes out to the volume driver.
 * A segment reaches the driver only after its xxh128 matched; a damaged one is answered with a nack
 * and the connection is closed, so the sender re-sends from that segment on a new connection (the
 * same path a dropped link takes). Duplicates (seq already applied) are skipped.
 *
 * Lines written back: `{"next":N}` first on every connection, `{"ack":N}` after each segment passed
 * on, `{"nack":N,"reason":…}` for a damaged one.
 */
import { type Duplex, Readable } from 'node:stream'
import { writeJsonLine } from '../agent-protocol/ndjson.js'
import type { StreamDigest } from '../agent-protocol/protocol-messages.js'
import { SnapferryError } from '../errors/snapferry-error.js'
import type { SegmentCodec } from './segment-codec.js'
import { FrameParser } from './segment-frame.js'
import { StreamDigestChain } from './stream-digest.js'

export interface ReceiverOptions {
  readonly codec: SegmentCodec
  readonly label: string
  /** A connection that closes before the end fails the stream instead of waiting for another. */
  readonly resumable: boolean
  readonly onCorrupt?: (e: SnapferryError) => void
  /**
   * Verified bytes held for the driver before the connection is paused (default 4 MiB). A larger buffer
   * keeps the link busy while the driver is not yet reading (an apply's destination checks).
   */
  readonly bufferBytes?: number
}

export interface ReceiverStats {
  segments: number
  rawBytes: number
  wireBytes: number
  corruptSegments: number
  duplicateFrames: number
  connections: number
}

export class SegmentReceiver {
  readonly output: Readable
  readonly stats: ReceiverStats = {
    segments: 0,
    rawBytes: 0,
    wireBytes: 0,
    corruptSegments: 0,
    duplicateFrames: 0,
    connections: 0,
  }
  readonly #o: ReceiverOptions
  readonly #chain = new StreamDigestChain()
  #next = 0
  #ended = false
  #conn: Duplex | undefined

  constructor(o: ReceiverOptions) {
    this.#o = o
    this.output = new Readable({
      highWaterMark: o.bufferBytes ?? 4 << 20,
      read: () => this.#conn?.resume(),
      destroy: (err, cb) => {
        this.#conn?.destroy()
        cb(err)
      },
    })
  }

  /** Number of the first segment not yet passed on. */
  get next(): number {
    return this.#next
  }

  /** Proof of the verified raw bytes passed on so far. */
  digest(): StreamDigest {
    return this.#chain.digest()
  }

  get ended(): boolean {
    return this.#ended
  }

  attach(conn: Duplex): void {
    const old = this.#conn
    this.#conn = conn
    old?.destroy()
    conn.on('error', () => {})
    if (this.#ended) {
      writeJsonLine(conn, { next: this.#next })
      conn.end()
      return
    }
    this.stats.connections++
    writeJsonLine(conn, { next: this.#next })
    const parser = new FrameParser()
    const onData = (chunk: Buffer) => {
      if (this.#conn !== conn) return
      this.stats.wireBytes += chunk.length
      parser.push(chunk)
      try {
        for (let f = parser.next(); f; f = parser.next()) {
          const { header: h } = f
          if (h.seq < this.#next) {
            this.stats.duplicateFrames++
            continue
          }
          if (h.seq > this.#next)
            throw new SnapferryError(
              'SEGMENT_CORRUPT',
              `segment ${h.seq} arrived where ${this.#next} was expected`,
              { transient: true },
            )
          const raw = this.#o.codec.open(h, f.payload)
          this.#next++
          if (h.end) {
            this.#ended = true
            writeJsonLine(conn, { ack: this.#next })
            this.output.push(null)
            conn.off('data', onData)
            return
          }
          this.stats.segments++
          this.stats.rawBytes += raw.length
          this.#chain.add(h.hash, raw.length)
          const room = this.output.push(raw)
          writeJsonLine(conn, { ack: this.#next })
          if (!room) conn.pause()
        }
      } catch (e) {
        const err = e as SnapferryError
        this.stats.corruptSegments++
        this.#o.onCorrupt?.(err)
        conn.off('data', onData)
        writeJsonLine(conn, { nack: this.#next, reason: err.message })
        conn.end()
        this.#conn = undefined
        if (!this.#o.resumable) this.output.destroy(err)
      }
    }
    conn.on('data', onData)
    conn.resume()
    const gone = () => {
      if (this.#conn !== conn) return
      this.#conn = undefined
      if (!this.#o.resumable && !this.#ended)
        this.output.destroy(
          new SnapferryError('TRANSFER_ABORTED', `the data connection for ${this.#o.label} closed early`, {
            transient: true,
          }),
        )
    }
    conn.on('close', gone)
    conn.on('end', gone)
  }
}
