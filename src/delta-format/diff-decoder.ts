/**
 * Streaming decoder for "rbd diff v1" (what `rbd export-diff` writes) and "rbd diff v2" (inside
 * `rbd export --export-format 2`). Validates strictly, never allocates more than MAX_CHUNK_BYTES at once.
 * Format: docs/WIRE-FORMAT.md.
 */
import { ByteReader } from './byte-reader.js'
import {
  DIFF_BANNER_V1,
  DIFF_BANNER_V2,
  MAX_CHUNK_BYTES,
  MAX_SNAP_NAME_BYTES,
  TAG,
} from './diff-constants.js'
import { diffError, showBytes } from './diff-errors.js'
import type { DataRecord, DecodedDiff, DiffHeader } from './diff-records.js'

export type DiffVersion = 1 | 2

export interface DecodeOptions {
  /** Which banner to expect; 'auto' accepts either. Default 'auto'. */
  readonly version?: DiffVersion | 'auto'
  /** Fail on bytes after the 'e' record. Default true (false inside an image stream). */
  readonly requireEof?: boolean
}

/** Decode a diff stream: resolves once the header is read; records then stream lazily. */
export async function decodeDiff(
  source: AsyncIterable<Uint8Array> | ByteReader,
  options: DecodeOptions = {},
): Promise<DecodedDiff & { readonly version: DiffVersion; bytesRead(): number }> {
  const r = source instanceof ByteReader ? source : new ByteReader(source)
  const version = await readBanner(r, options.version ?? 'auto')
  const header: { fromSnap?: string; toSnap?: string; size?: number; protected?: boolean } = {}
  for (;;) {
    const tagOffset = r.offset
    const tag = await readTag(r, 'a header record')
    if (tag === TAG.WRITE || tag === TAG.ZERO || tag === TAG.END) {
      if (header.size === undefined) {
        throw diffError(
          'DIFF_BAD_RECORD',
          `no image size ('s') record before the first data record`,
          tagOffset,
        )
      }
      const h: DiffHeader = { ...header, size: header.size }
      return {
        header: h,
        version,
        records: readRecords(r, version, h, tag, tagOffset, options.requireEof ?? true),
        bytesRead: () => r.offset,
      }
    }
    const len = version === 2 && tag !== TAG.SNAP_PROTECTED ? await readLen(r) : undefined
    switch (tag) {
      case TAG.FROM_SNAP:
      case TAG.TO_SNAP: {
        const key = tag === TAG.FROM_SNAP ? 'fromSnap' : 'toSnap'
        if (header[key] !== undefined)
          throw diffError('DIFF_BAD_RECORD', `duplicate '${String.fromCharCode(tag)}' record`, tagOffset)
        const name = await readString(r)
        if (len !== undefined && len !== 4 + Buffer.byteLength(name)) {
          throw diffError(
            'DIFF_BAD_RECORD',
            `'${String.fromCharCode(tag)}' record length ${len} does not match its name`,
            tagOffset,
          )
        }
        header[key] = name
        break
      }
      case TAG.IMAGE_SIZE: {
        if (header.size !== undefined) throw diffError('DIFF_BAD_RECORD', `duplicate 's' record`, tagOffset)
        if (len !== undefined && len !== 8)
          throw diffError('DIFF_BAD_RECORD', `'s' record length ${len}, expected 8`, tagOffset)
        header.size = await readU64(r, 'image size')
        break
      }
      case TAG.SNAP_PROTECTED: {
        if (version !== 2)
          throw diffError('DIFF_UNKNOWN_TAG', `'p' record is not valid in rbd diff v1`, tagOffset)
        // Ceph 16.2.15 declares length 8 here but writes a single byte (see docs/WIRE-FORMAT.md).
        const declared = await readLen(r)
        if (declared !== 1 && declared !== 8)
          throw diffError('DIFF_BAD_RECORD', `'p' record length ${declared}`, tagOffset)
        const b = await readExact(r, 1, "'p' record")
        header.protected = b[0] !== 0
        break
      }
      default:
        if (version === 2 && len !== undefined) {
          await skip(r, len) // v2 records carry their length so readers can skip unknown ones
          break
        }
        throw diffError(
          'DIFF_UNKNOWN_TAG',
          `unknown record tag 0x${tag.toString(16).padStart(2, '0')}`,
          tagOffset,
        )
    }
  }
}

async function* readRecords(
  r: ByteReader,
  version: DiffVersion,
  header: DiffHeader,
  firstTag: number,
  firstOffset: number,
  requireEof: boolean,
): AsyncGenerator<DataRecord> {
  let tag = firstTag
  let tagOffset = firstOffset
  let prevEnd = 0
  for (;;) {
    if (tag === TAG.END) {
      if (requireEof && !(await r.atEnd())) {
        throw diffError('DIFF_BAD_RECORD', 'unexpected bytes after the end record', r.offset)
      }
      return
    }
    if (tag !== TAG.WRITE && tag !== TAG.ZERO) {
      const known = tag === TAG.FROM_SNAP || tag === TAG.TO_SNAP || tag === TAG.IMAGE_SIZE
      if (version === 2 && !known) {
        await skip(r, await readLen(r))
      } else {
        throw diffError(
          known ? 'DIFF_BAD_RECORD' : 'DIFF_UNKNOWN_TAG',
          known
            ? `'${String.fromCharCode(tag)}' record after data records`
            : `unknown record tag 0x${tag.toString(16).padStart(2, '0')}`,
          tagOffset,
        )
      }
    } else {
      const declared = version === 2 ? await readLen(r) : undefined
      const offset = await readU64(r, 'extent offset')
      const length = await readU64(r, 'extent length')
      const kind = tag === TAG.WRITE ? 'write' : 'zero'
      if (declared !== undefined && declared !== (kind === 'write' ? 16 + length : 16)) {
        throw diffError(
          'DIFF_BAD_RECORD',
          `'${kind[0]}' record length field ${declared} disagrees with its extent`,
          tagOffset,
        )
      }
      if (length === 0)
        throw diffError('DIFF_BAD_RECORD', `zero-length '${kind[0]}' record at offset ${offset}`, tagOffset)
      if (offset < prevEnd) {
        throw diffError(
          'DIFF_OUT_OF_ORDER',
          `extent at ${offset} starts before the previous extent ends (${prevEnd})`,
          tagOffset,
        )
      }
      if (offset + length > header.size) {
        throw diffError(
          'DIFF_BAD_RECORD',
          `extent ${offset}+${length} extends past the image size ${header.size}`,
          tagOffset,
        )
      }
      prevEnd = offset + length
      if (kind === 'zero') {
        yield { kind, offset, length }
      } else {
        let done = 0
        while (done < length) {
          const chunk = await r.readSome(Math.min(MAX_CHUNK_BYTES, length - done))
          if (chunk.length === 0) {
            throw diffError(
              'DIFF_TRUNCATED',
              `stream ends inside the data of extent ${offset}+${length}`,
              r.offset,
            )
          }
          yield { kind, offset: offset + done, data: chunk }
          done += chunk.length
        }
      }
    }
    tagOffset = r.offset
    tag = await readTag(r, "a data record or the end record ('e')")
  }
}

async function readBanner(r: ByteReader, want: DiffVersion | 'auto'): Promise<DiffVersion> {
  const b = await r.read(DIFF_BANNER_V1.length)
  if (b.equals(DIFF_BANNER_V1) && want !== 2) return 1
  if (b.equals(DIFF_BANNER_V2) && want !== 1) return 2
  const expected = want === 2 ? 'rbd diff v2' : want === 1 ? 'rbd diff v1' : 'rbd diff v1 or v2'
  if (b.length === 0) throw diffError('DIFF_TRUNCATED', `empty stream, expected the '${expected}' banner`, 0)
  throw diffError(
    'DIFF_BAD_BANNER',
    `not an rbd diff: expected the '${expected}' banner, found ${showBytes(b)}`,
    0,
  )
}

async function readTag(r: ByteReader, what: string): Promise<number> {
  const b = await r.read(1)
  if (b.length === 0) throw diffError('DIFF_TRUNCATED', `stream ends where ${what} was expected`, r.offset)
  return b[0] as number
}

async function readExact(r: ByteReader, n: number, what: string): Promise<Buffer> {
  const start = r.offset
  const b = await r.read(n)
  if (b.length < n) throw diffError('DIFF_TRUNCATED', `stream ends inside ${what}`, start)
  return b
}

async function readU64(r: ByteReader, what: string): Promise<number> {
  const start = r.offset
  const v = (await readExact(r, 8, what)).readBigUInt64LE(0)
  if (v > BigInt(Number.MAX_SAFE_INTEGER))
    throw diffError('DIFF_TOO_LARGE', `${what} ${v} is absurdly large`, start)
  return Number(v)
}

async function readLen(r: ByteReader): Promise<number> {
  return readU64(r, 'record length')
}

async function readString(r: ByteReader): Promise<string> {
  const start = r.offset
  const n = (await readExact(r, 4, 'a string length')).readUInt32LE(0)
  if (n > MAX_SNAP_NAME_BYTES) throw diffError('DIFF_TOO_LARGE', `snapshot name length ${n} is absurd`, start)
  return (await readExact(r, n, 'a snapshot name')).toString('utf8')
}

async function skip(r: ByteReader, n: number): Promise<void> {
  let left = n
  while (left > 0) {
    const b = await r.readSome(Math.min(left, MAX_CHUNK_BYTES))
    if (b.length === 0) throw diffError('DIFF_TRUNCATED', 'stream ends inside a skipped record', r.offset)
    left -= b.length
  }
}
