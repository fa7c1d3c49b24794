/**
 * Decoder for `rbd export --export-format 2` streams: an image header, then one "rbd diff v2" per
 * snapshot plus one for the head. Each diff's records must be read to the end before the next diff.
 */
import { ByteReader } from './byte-reader.js'
import { IMAGE_BANNER_V2, IMAGE_DIFFS_BANNER_V2, MAX_CHUNK_BYTES, TAG } from './diff-constants.js'
import { decodeDiff } from './diff-decoder.js'
import { diffError, showBytes } from './diff-errors.js'
import type { DecodedDiff } from './diff-records.js'

export interface ImageV2Header {
  readonly order?: number
  readonly features?: bigint
  readonly stripeUnit?: number
  readonly stripeCount?: number
  /** Image metadata key/value pairs ('M' records), in stream order. */
  readonly meta: readonly (readonly [string, string])[]
}

export interface DecodedImageV2 {
  readonly header: ImageV2Header
  /** The snapshots in order (each from the previous), then the head; the count is in the stream. */
  readonly diffs: AsyncIterable<DecodedDiff>
}

const MAX_META_BYTES = 1 << 20

export async function decodeImageV2(source: AsyncIterable<Uint8Array>): Promise<DecodedImageV2> {
  const r = new ByteReader(source)
  await expectBanner(r, IMAGE_BANNER_V2, 'rbd image v2')
  const header: {
    order?: number
    features?: bigint
    stripeUnit?: number
    stripeCount?: number
    meta: [string, string][]
  } = {
    meta: [],
  }
  for (;;) {
    const at = r.offset
    const tagByte = await exact(r, 1, 'an image header record')
    const tag = tagByte[0] as number
    if (tag === TAG.IMAGE_END) break
    const len = u64(await exact(r, 8, 'a record length'), at)
    switch (tag) {
      case TAG.IMAGE_ORDER:
      case TAG.STRIPE_UNIT:
      case TAG.STRIPE_COUNT:
      case TAG.IMAGE_FEATURES: {
        if (len !== 8)
          throw diffError(
            'DIFF_BAD_RECORD',
            `image header record '${String.fromCharCode(tag)}' has length ${len}, expected 8`,
            at,
          )
        const raw = (await exact(r, 8, 'an image header value')).readBigUInt64LE(0)
        if (tag === TAG.IMAGE_FEATURES) header.features = raw
        else if (tag === TAG.IMAGE_ORDER) header.order = Number(raw)
        else if (tag === TAG.STRIPE_UNIT) header.stripeUnit = Number(raw)
        else header.stripeCount = Number(raw)
        break
      }
      case TAG.IMAGE_META: {
        if (len > MAX_META_BYTES)
          throw diffError('DIFF_TOO_LARGE', `image-meta record of ${len} bytes is absurd`, at)
        const body = await exact(r, len, 'an image-meta record')
        const klen = body.readUInt32LE(0)
        const key = body.subarray(4, 4 + klen).toString('utf8')
        const vlen = body.readUInt32LE(4 + klen)
        const value = body.subarray(8 + klen, 8 + klen + vlen).toString('utf8')
        if (8 + klen + vlen !== len)
          throw diffError('DIFF_BAD_RECORD', `image-meta record lengths do not add up`, at)
        header.meta.push([key, value])
        break
      }
      default:
        await skipBytes(r, len) // unknown header tags are skipped, as rbd import does
    }
  }
  await expectBanner(r, IMAGE_DIFFS_BANNER_V2, 'rbd image diffs v2')
  const countAt = r.offset
  const count = u64(await exact(r, 8, 'the diff count'), countAt)
  if (count > 1_000_000) throw diffError('DIFF_TOO_LARGE', `diff count ${count} is absurd`, countAt)
  return { header, diffs: diffsOf(r, count) }
}

async function* diffsOf(r: ByteReader, count: number): AsyncGenerator<DecodedDiff> {
  for (let i = 0; i < count; i++) {
    const d = await decodeDiff(r, { version: 2, requireEof: i === count - 1 })
    let drained = false
    const records = (async function* () {
      yield* d.records
      drained = true
    })()
    yield { header: d.header, records }
    if (!drained)
      throw diffError('DIFF_BAD_RECORD', `diff ${i + 1} of ${count} was not read to its end`, r.offset)
  }
}

async function expectBanner(r: ByteReader, banner: Buffer, name: string): Promise<void> {
  const at = r.offset
  const b = await r.read(banner.length)
  if (!b.equals(banner)) {
    if (b.length < banner.length && banner.subarray(0, b.length).equals(b)) {
      throw diffError('DIFF_TRUNCATED', `stream ends inside the '${name}' banner`, at)
    }
    throw diffError('DIFF_BAD_BANNER', `expected the '${name}' banner, found ${showBytes(b)}`, at)
  }
}

async function exact(r: ByteReader, n: number, what: string): Promise<Buffer> {
  const at = r.offset
  const b = await r.read(n)
  if (b.length < n) throw diffError('DIFF_TRUNCATED', `stream ends inside ${what}`, at)
  return b
}

function u64(b: Buffer, at: number): number {
  const v = b.readBigUInt64LE(0)
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw diffError('DIFF_TOO_LARGE', `length ${v} is absurd`, at)
  return Number(v)
}

async function skipBytes(r: ByteReader, n: number): Promise<void> {
  let left = n
  while (left > 0) {
    const b = await r.readSome(Math.min(left, MAX_CHUNK_BYTES))
    if (b.length === 0) throw diffError('DIFF_TRUNCATED', 'stream ends inside a skipped record', r.offset)
    left -= b.length
  }
}
