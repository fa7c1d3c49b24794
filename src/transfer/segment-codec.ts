/**
 * Turning raw segments into frames and back: zstd (zstd-napi) and the xxh128 of the raw bytes.
 * One codec per stream; compress and decompress calls are synchronous (≈1–2 ms per MiB at level 1).
 */
import { createXXHash128, type IHasher } from 'hash-wasm'
import { Compressor, Decompressor } from 'zstd-napi'
import { SnapferryError } from '../errors/snapferry-error.js'
import { CODEC, encodeFrameHeader, type FrameHeader } from './segment-frame.js'

export class SegmentCodec {
  readonly #hasher: IHasher
  readonly #compressors = new Map<number, Compressor>()
  #decompressor: Decompressor | undefined

  private constructor(hasher: IHasher) {
    this.#hasher = hasher
  }

  static async create(): Promise<SegmentCodec> {
    return new SegmentCodec(await createXXHash128())
  }

  hash(raw: Buffer): Buffer {
    this.#hasher.init()
    this.#hasher.update(raw)
    return Buffer.from(this.#hasher.digest('binary'))
  }

  /** Header and payload of one frame; level 0 sends raw, and so does a segment zstd cannot shrink. */
  frame(
    seq: number,
    raw: Buffer,
    level: number,
  ): { header: Buffer; payload: Buffer; compressMs: number; hash: Buffer } {
    const hash = this.hash(raw)
    let payload = raw
    let codec: FrameHeader['codec'] = CODEC.raw
    const t0 = performance.now()
    if (level > 0 && raw.length > 0) {
      const z = this.#compressor(level).compress(raw)
      if (z.length < raw.length) {
        payload = z
        codec = CODEC.zstd
      }
    }
    const compressMs = performance.now() - t0
    const header = encodeFrameHeader({
      codec,
      end: false,
      level: codec === CODEC.zstd ? level : 0,
      seq,
      rawLen: raw.length,
      payloadLen: payload.length,
      hash,
    })
    return { header, payload, compressMs, hash }
  }

  endFrame(seq: number): Buffer {
    return encodeFrameHeader({
      codec: CODEC.raw,
      end: true,
      level: 0,
      seq,
      rawLen: 0,
      payloadLen: 0,
      hash: this.hash(Buffer.alloc(0)),
    })
  }

  /** The raw bytes of a frame, verified; SEGMENT_CORRUPT when they are not what the sender hashed. */
  open(h: FrameHeader, payload: Buffer): Buffer {
    let raw = payload
    if (h.codec === CODEC.zstd) {
      try {
        this.#decompressor ??= new Decompressor()
        raw = this.#decompressor.decompress(payload)
      } catch (e) {
        throw corrupt(h, `zstd cannot decompress it (${(e as Error).message})`)
      }
    }
    if (raw.length !== h.rawLen) throw corrupt(h, `${raw.length} bytes instead of ${h.rawLen}`)
    if (!this.hash(raw).equals(h.hash)) throw corrupt(h, 'xxh128 differs from the one the sender computed')
    return raw
  }

  #compressor(level: number): Compressor {
    let c = this.#compressors.get(level)
    if (!c) {
      c = new Compressor()
      c.setParameters({ compressionLevel: level })
      this.#compressors.set(level, c)
    }
    return c
  }
}

function corrupt(h: FrameHeader, why: string): SnapferryError {
  return new SnapferryError('SEGMENT_CORRUPT', `segment ${h.seq} arrived damaged: ${why}`, {
    hint: 'it is not applied; the sender sends it again',
    transient: true,
  })
}
