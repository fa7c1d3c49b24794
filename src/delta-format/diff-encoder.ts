/** Streaming encoder for "rbd diff v1": the bytes `rbd import-diff` and `rbd merge-diff` accept. */
import { SnapferryError } from '../errors/snapferry-error.js'
import { COALESCE_WRITE_BYTES, DIFF_BANNER_V1, TAG } from './diff-constants.js'
import type { DataRecord, DiffHeader } from './diff-records.js'
import { recordEnd } from './diff-records.js'

export function encodeHeaderV1(h: DiffHeader): Buffer {
  const parts: Buffer[] = [DIFF_BANNER_V1]
  if (h.fromSnap !== undefined) parts.push(encodeString(TAG.FROM_SNAP, h.fromSnap))
  if (h.toSnap !== undefined) parts.push(encodeString(TAG.TO_SNAP, h.toSnap))
  const s = Buffer.allocUnsafe(9)
  s[0] = TAG.IMAGE_SIZE
  s.writeBigUInt64LE(BigInt(h.size), 1)
  parts.push(s)
  return Buffer.concat(parts)
}

function encodeString(tag: number, value: string): Buffer {
  const bytes = Buffer.from(value, 'utf8')
  const b = Buffer.allocUnsafe(5 + bytes.length)
  b[0] = tag
  b.writeUInt32LE(bytes.length, 1)
  bytes.copy(b, 5)
  return b
}

/** The 17-byte head of a 'w' or 'z' record; for 'w' the data follows. */
export function encodeExtentHead(kind: DataRecord['kind'], offset: number, length: number): Buffer {
  const b = Buffer.allocUnsafe(17)
  b[0] = kind === 'write' ? TAG.WRITE : TAG.ZERO
  b.writeBigUInt64LE(BigInt(offset), 1)
  b.writeBigUInt64LE(BigInt(length), 9)
  return b
}

export const END_RECORD = Buffer.from([TAG.END])

/**
 * Encode a whole diff. Records must ascend without overlap (the encoder checks: a producer bug must
 * never reach a destination as a silently wrong delta). Contiguous write records are joined into one
 * 'w' record of up to `coalesceBytes` (the same bytes at the same offsets, in fewer records; why:
 * COALESCE_WRITE_BYTES). The joined pieces are held, not copied, until their record is written, so a
 * producer must not reuse a buffer it handed over (streams never do).
 */
export async function* encodeDiffV1(
  header: DiffHeader,
  records: AsyncIterable<DataRecord> | Iterable<DataRecord>,
  coalesceBytes = COALESCE_WRITE_BYTES,
): AsyncGenerator<Buffer> {
  yield encodeHeaderV1(header)
  let prevEnd = 0
  let run: Buffer[] = []
  let runOffset = 0
  let runBytes = 0
  function* flush(): Generator<Buffer> {
    if (runBytes === 0) return
    yield encodeExtentHead('write', runOffset, runBytes)
    yield* run
    run = []
    runBytes = 0
  }
  for await (const r of records) {
    if (r.offset < prevEnd || recordEnd(r) > header.size) {
      throw new SnapferryError(
        'INTERNAL',
        `diff encoder got extent ${r.offset}+${recordEnd(r) - r.offset} out of order or past size ${header.size} (previous end ${prevEnd})`,
      )
    }
    if (recordEnd(r) === r.offset) continue
    prevEnd = recordEnd(r)
    if (r.kind === 'write') {
      if (runBytes > 0 && (r.offset !== runOffset + runBytes || runBytes + r.data.length > coalesceBytes))
        yield* flush()
      if (runBytes === 0) runOffset = r.offset
      run.push(r.data)
      runBytes += r.data.length
    } else {
      yield* flush()
      yield encodeExtentHead('zero', r.offset, r.length)
    }
  }
  yield* flush()
  yield END_RECORD
}
