/**
 * Raw delta bytes into frames, for the sending end: a segment is cut once it holds SEGMENT_BYTES, or once
 * its first byte waited `maxAgeMs` (why: SEGMENT_AGE_MS, agent-streams.ts); it is compressed at the level
 * the compression policy picks, fed back with what the segment cost, and its hash is chained into the
 * stream digest. What becomes of a frame (retention, sending) is the caller's.
 */
import type { StreamDigest } from '../agent-protocol/protocol-messages.js'
import { CompressionPolicy, type CompressionSetting } from './compression-policy.js'
import type { SegmentCodec } from './segment-codec.js'
import { SEGMENT_BYTES } from './segment-frame.js'
import type { SenderStats } from './segment-sender.js'
import { StreamDigestChain } from './stream-digest.js'

export interface CutterOptions {
  readonly codec: SegmentCodec
  readonly compression: CompressionSetting
  readonly maxLevel?: number | undefined
  readonly maxAgeMs?: number | undefined
  /** Counters the cutter adds to (segments, raw bytes, compression time, raw bytes per level). */
  readonly stats: SenderStats
  readonly onFrame: (seq: number, header: Buffer, payload: Buffer) => void
  readonly onLevelChange?: ((level: number) => void) | undefined
}

export class SegmentCutter {
  readonly #o: CutterOptions
  readonly #policy: CompressionPolicy
  readonly #chain = new StreamDigestChain()
  #parts: Buffer[] = []
  #partBytes = 0
  #ageTimer: NodeJS.Timeout | undefined
  #nextSeq = 0
  #waitMs = 0

  constructor(o: CutterOptions) {
    this.#o = o
    this.#policy = new CompressionPolicy(o.compression, o.maxLevel)
  }

  /** The seq the next frame will get. */
  get nextSeq(): number {
    return this.#nextSeq
  }

  /** Proof of the raw bytes cut into segments so far. */
  digest(): StreamDigest {
    return this.#chain.digest()
  }

  /** Time the sender waited for the network: part of the next segment's cost for the policy. */
  waited(ms: number): void {
    this.#waitMs += ms
  }

  push(chunk: Buffer): void {
    let at = 0
    while (at < chunk.length) {
      const take = Math.min(SEGMENT_BYTES - this.#partBytes, chunk.length - at)
      this.#parts.push(chunk.subarray(at, at + take))
      this.#partBytes += take
      at += take
      if (this.#partBytes === SEGMENT_BYTES) this.#cut()
    }
    if (this.#partBytes > 0 && !this.#ageTimer && this.#o.maxAgeMs !== undefined) {
      this.#ageTimer = setTimeout(() => {
        this.#ageTimer = undefined
        // stop() and every cut clear the timer, so bytes still waiting here are a segment to send.
        if (this.#partBytes > 0) this.#cut()
      }, this.#o.maxAgeMs)
      this.#ageTimer.unref()
    }
  }

  /** Cut what is left, then the end frame; returns the end frame's seq. */
  end(): number {
    if (this.#partBytes > 0) this.#cut()
    const seq = this.#nextSeq++
    this.#o.onFrame(seq, this.#o.codec.endFrame(seq), Buffer.alloc(0))
    return seq
  }

  stop(): void {
    clearTimeout(this.#ageTimer)
    this.#ageTimer = undefined
  }

  /** Make the next frame from the collected raw bytes. */
  #cut(): void {
    this.stop()
    // Copy: the producer may reuse its buffers, and a retained frame may be sent again later.
    const raw = this.#parts.length === 1 ? Buffer.from(this.#parts[0] as Buffer) : Buffer.concat(this.#parts)
    this.#parts = []
    this.#partBytes = 0
    const level = this.#policy.level
    const f = this.#o.codec.frame(this.#nextSeq, raw, level)
    const s = this.#o.stats
    s.segments++
    s.rawBytes += raw.length
    s.compressMs += f.compressMs
    this.#chain.add(f.hash, raw.length)
    const used = String(f.header[7] ?? 0)
    s.rawByLevel[used] = (s.rawByLevel[used] ?? 0) + raw.length
    this.#policy.observe({
      rawBytes: raw.length,
      wireBytes: f.payload.length,
      compressMs: f.compressMs,
      waitMs: this.#waitMs,
    })
    this.#waitMs = 0
    if (this.#policy.level !== level) this.#o.onLevelChange?.(this.#policy.level)
    this.#o.onFrame(this.#nextSeq++, f.header, f.payload)
  }
}
