/**
 * The file driver's delta: read the whole volume once, hash each block, and emit as rbd diff v1 every
 * block whose hash differs from the start snapshot's record; record the new hashes as the end snapshot.
 * Why this converges to an exact copy: docs/FILE-DRIVER.md.
 */
import type { FileHandle } from 'node:fs/promises'
import { END_RECORD, encodeExtentHead, encodeHeaderV1 } from '../../delta-format/diff-encoder.js'
import type { DiffHeader } from '../../delta-format/diff-records.js'
import { SnapferryError } from '../../errors/snapferry-error.js'
import type { Extent } from '../volume-driver.js'
import { type BlockHasher, HASH_BYTES } from './block-hasher.js'
import type { RecordReader, RecordWriter } from './block-record.js'
import { ioError } from './file-volume.js'

export interface ScanExportInput {
  readonly fh: FileHandle
  readonly path: string
  readonly size: number
  readonly blockSize: number
  readonly header: DiffHeader
  readonly hasher: BlockHasher
  /** The start snapshot's record; absent for a base. */
  readonly from: RecordReader | undefined
  readonly writer: RecordWriter
  readonly include: readonly Extent[]
  readonly signal: AbortSignal | undefined
}

export interface ScanCounters {
  streamBytes: number
  dataBytes: number
  zeroBytes: number
  extents: number
  scannedBytes: number
}

/** Read size per I/O: 1 MiB reads cost a third of the CPU of 64 KiB ones (transport-baselines.md). */
const READ_BYTES = 1 << 20

export async function* scanExport(input: ScanExportInput, c: ScanCounters): AsyncGenerator<Buffer> {
  const { fh, size, blockSize: bs, hasher, from, writer } = input
  const chunkBytes = Math.max(bs, Math.floor(READ_BYTES / bs) * bs)
  const header = encodeHeaderV1(input.header)
  c.streamBytes += header.length
  yield header

  const include = [...input.include].sort((a, b) => a.offset - b.offset)
  let inc = 0
  const forced = (start: number, end: number): boolean => {
    while (inc < include.length && (include[inc] as Extent).offset + (include[inc] as Extent).length <= start)
      inc++
    const e = include[inc]
    return e !== undefined && e.offset < end
  }

  // Runs of equal-kind adjacent blocks are coalesced into one record (write runs within one chunk).
  let runKind: 'write' | 'zero' | undefined
  let runStart = 0
  let runEnd = 0
  let runBuf: Buffer | undefined
  let runBufStart = 0
  // Read buffers are reused unless a slice of one was handed downstream without copying.
  const spare: Buffer[] = []
  let gaveAway = false
  const flush = function* (): Generator<Buffer> {
    if (runKind === undefined) return
    const len = runEnd - runStart
    const head = encodeExtentHead(runKind, runStart, len)
    c.extents++
    c.streamBytes += head.length
    yield head
    if (runKind === 'write') {
      c.dataBytes += len
      c.streamBytes += len
      const data = (runBuf as Buffer).subarray(runStart - runBufStart, runEnd - runBufStart)
      // A small slice would pin its whole read buffer while it waits in stream buffers downstream
      // (64 queued 64 KiB slices = 64 MiB pinned): copy it out so memory tracks bytes in flight.
      const copy = data.length * 4 < (runBuf as Buffer).length
      if (!copy) gaveAway = true
      yield copy ? Buffer.from(data) : data
    } else {
      c.zeroBytes += len
    }
    runKind = undefined
  }

  const readChunk = async (pos: number): Promise<Buffer> => {
    const len = Math.min(chunkBytes, size - pos)
    const buf = (spare.pop() ?? Buffer.allocUnsafe(chunkBytes)).subarray(0, len)
    let got = 0
    try {
      while (got < len) {
        const { bytesRead } = await fh.read(buf, got, len - got, pos + got)
        if (bytesRead === 0) break
        got += bytesRead
      }
    } catch (e) {
      throw ioError(input.path, 'read', e)
    }
    if (got < len) {
      throw new SnapferryError(
        'VOLUME_IO',
        `${input.path} shrank while it was being read (expected ${size} bytes, ended at ${pos + got})`,
        {
          hint: 'the volume was resized during the round; the next round will pick up the new size',
          transient: true,
          details: { path: input.path },
        },
      )
    }
    return buf
  }

  let next: Promise<Buffer> | undefined = size > 0 ? readChunk(0) : undefined
  for (let pos = 0; pos < size; pos += chunkBytes) {
    input.signal?.throwIfAborted()
    const buf = await (next as Promise<Buffer>)
    const nextPos = pos + chunkBytes
    next = nextPos < size ? readChunk(nextPos) : undefined
    next?.catch(() => {}) // surfaced when awaited
    c.scannedBytes += buf.length
    const firstBlock = pos / bs
    const nBlocks = Math.ceil(buf.length / bs)
    const hashes = Buffer.allocUnsafe(nBlocks * HASH_BYTES)
    const old = from ? await from.read(firstBlock, nBlocks) : undefined
    for (let b = 0; b < nBlocks; b++) {
      const start = b * bs
      const end = Math.min(start + bs, buf.length)
      const isZero = hasher.hashInto(buf.subarray(start, end), hashes, b * HASH_BYTES)
      let kind: 'write' | 'zero' | undefined
      const hasOld = old !== undefined && (b + 1) * HASH_BYTES <= old.length
      if (!hasOld) {
        // A base, or growth past the old size: the destination reads zeros there already.
        kind = isZero ? undefined : 'write'
      } else if (
        !hashes
          .subarray(b * HASH_BYTES, (b + 1) * HASH_BYTES)
          .equals(old.subarray(b * HASH_BYTES, (b + 1) * HASH_BYTES))
      ) {
        kind = isZero ? 'zero' : 'write'
      }
      if (kind === undefined && include.length > 0 && forced(pos + start, pos + end))
        kind = isZero ? 'zero' : 'write'
      const absStart = pos + start
      const absEnd = pos + end
      if (
        kind !== undefined &&
        kind === runKind &&
        runEnd === absStart &&
        (kind === 'zero' || runBuf === buf)
      ) {
        runEnd = absEnd
      } else {
        yield* flush()
        if (kind !== undefined) {
          runKind = kind
          runStart = absStart
          runEnd = absEnd
          runBuf = buf
          runBufStart = pos
        }
      }
    }
    if (runKind === 'write') yield* flush()
    await writer.append(hashes)
    if (!gaveAway) spare.push(Buffer.from(buf.buffer, buf.byteOffset, chunkBytes))
    gaveAway = false
  }
  yield* flush()
  c.streamBytes += END_RECORD.length
  yield END_RECORD
}
