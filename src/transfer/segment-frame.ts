/**
 * Segment frames: how a delta crosses between agents (docs/AGENT-PROTOCOL.md, "Data connections").
 * The raw "rbd diff v1" stream is cut into segments of at most SEGMENT_BYTES; each travels as one frame
 * carrying its sequence number, codec, raw length and the xxh128 of its raw bytes, so the receiver
 * verifies every segment before a byte of it is applied, and asks for it again when it does not match.
 *
 *   0  "SFSG"      4  magic
 *   4  version     1  = 1
 *   5  codec       1  0 raw, 1 zstd
 *   6  flags       1  bit 0: end of stream (raw length 0)
 *   7  level       1  zstd level used (informational)
 *   8  seq         4  u32 LE, 0, 1, 2 …
 *  12  rawLen      4  u32 LE
 *  16  payloadLen  4  u32 LE
 *  20  xxh128     16  of the raw bytes
 *  36  payload
 */
import { SnapferryError } from '../errors/snapferry-error.js'

export const FRAME_MAGIC = Buffer.from('SFSG', 'latin1')
export const FRAME_VERSION = 1
export const FRAME_HEADER_BYTES = 36
/** Raw bytes per segment: big enough for zstd and hashing to run at full speed, small enough to re-send. */
export const SEGMENT_BYTES = 1 << 20
/** A payload may exceed its raw size a little when it does not compress (zstd's worst case). */
export const MAX_PAYLOAD_BYTES = SEGMENT_BYTES + (SEGMENT_BYTES >> 7) + 1024

export const CODEC = { raw: 0, zstd: 1 } as const
export type Codec = (typeof CODEC)[keyof typeof CODEC]
export const FLAG_END = 1

export interface FrameHeader {
  readonly codec: Codec
  readonly end: boolean
  readonly level: number
  readonly seq: number
  readonly rawLen: number
  readonly payloadLen: number
  readonly hash: Buffer
}

export function encodeFrameHeader(h: FrameHeader): Buffer {
  const b = Buffer.alloc(FRAME_HEADER_BYTES)
  FRAME_MAGIC.copy(b, 0)
  b[4] = FRAME_VERSION
  b[5] = h.codec
  b[6] = h.end ? FLAG_END : 0
  b[7] = h.level
  b.writeUInt32LE(h.seq, 8)
  b.writeUInt32LE(h.rawLen, 12)
  b.writeUInt32LE(h.payloadLen, 16)
  h.hash.copy(b, 20)
  return b
}

/** Parse and bound-check a header; a damaged one throws SEGMENT_CORRUPT (the stream cannot be trusted). */
export function decodeFrameHeader(b: Buffer): FrameHeader {
  const bad = (what: string) =>
    new SnapferryError('SEGMENT_CORRUPT', `segment frame header is damaged: ${what}`, { transient: true })
  if (b.length < FRAME_HEADER_BYTES) throw bad('short header')
  if (!b.subarray(0, 4).equals(FRAME_MAGIC)) throw bad(`magic ${b.subarray(0, 4).toString('hex')}`)
  if (b[4] !== FRAME_VERSION) throw bad(`version ${b[4]}`)
  const codec = b[5] as number
  if (codec !== CODEC.raw && codec !== CODEC.zstd) throw bad(`codec ${codec}`)
  const flags = b[6] as number
  if ((flags & ~FLAG_END) !== 0) throw bad(`flags ${flags}`)
  const rawLen = b.readUInt32LE(12)
  const payloadLen = b.readUInt32LE(16)
  if (rawLen > SEGMENT_BYTES) throw bad(`raw length ${rawLen}`)
  if (payloadLen > MAX_PAYLOAD_BYTES) throw bad(`payload length ${payloadLen}`)
  if (codec === CODEC.raw && payloadLen !== rawLen) throw bad('raw payload length differs from raw length')
  const end = (flags & FLAG_END) !== 0
  if (end && rawLen !== 0) throw bad('end frame with data')
  return {
    codec: codec as Codec,
    end,
    level: b[7] as number,
    seq: b.readUInt32LE(8),
    rawLen,
    payloadLen,
    hash: Buffer.from(b.subarray(20, 36)),
  }
}

/**
 * Cuts a byte stream into frames without copying more than one frame: feed chunks, get whole frames.
 * Keeps at most one header plus one payload buffered.
 */
export class FrameParser {
  #chunks: Buffer[] = []
  #buffered = 0
  #header: FrameHeader | undefined

  push(chunk: Buffer): void {
    if (chunk.length === 0) return
    this.#chunks.push(chunk)
    this.#buffered += chunk.length
  }

  /** The next complete frame, or undefined until more bytes arrive. Throws SEGMENT_CORRUPT. */
  next(): { header: FrameHeader; payload: Buffer } | undefined {
    if (!this.#header) {
      if (this.#buffered < FRAME_HEADER_BYTES) return undefined
      this.#header = decodeFrameHeader(this.#take(FRAME_HEADER_BYTES))
    }
    if (this.#buffered < this.#header.payloadLen) return undefined
    const header = this.#header
    this.#header = undefined
    return { header, payload: this.#take(header.payloadLen) }
  }

  #take(n: number): Buffer {
    if (n === 0) return Buffer.alloc(0)
    const first = this.#chunks[0] as Buffer
    if (first.length >= n) {
      const out = first.subarray(0, n)
      if (first.length === n) this.#chunks.shift()
      else this.#chunks[0] = first.subarray(n)
      this.#buffered -= n
      return out
    }
    const out = Buffer.allocUnsafe(n)
    let at = 0
    while (at < n) {
      const c = this.#chunks[0] as Buffer
      const k = Math.min(c.length, n - at)
      c.copy(out, at, 0, k)
      at += k
      if (k === c.length) this.#chunks.shift()
      else this.#chunks[0] = c.subarray(k)
    }
    this.#buffered -= n
    return out
  }
}
