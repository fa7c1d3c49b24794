/**
 * The end-to-end proof of a delta stream, at no extra hashing cost: sha256 over the xxh128 of every
 * segment, in order, plus the raw byte count. The sender adds each segment's hash as it cuts it, the
 * receiver each hash it verified against the bytes it passes to its driver; equal digests mean the
 * driver received the same segments, in the same order, as the source exported. (Hashing the whole
 * raw stream a second time with sha256 cost both agents about as much CPU as the rest of the data path
 * on the downtime bench; the segment hashes already cover every byte.)
 */
import { createHash, type Hash } from 'node:crypto'
import type { StreamDigest } from '../agent-protocol/protocol-messages.js'

export class StreamDigestChain {
  readonly #h: Hash = createHash('sha256')
  #bytes = 0

  /** One segment: its xxh128 and its raw length. */
  add(segmentHash: Uint8Array, rawBytes: number): void {
    this.#h.update(segmentHash)
    this.#bytes += rawBytes
  }

  digest(): StreamDigest {
    return { streamDigest: this.#h.copy().digest('hex'), streamBytes: this.#bytes }
  }
}
