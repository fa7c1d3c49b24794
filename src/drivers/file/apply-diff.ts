/**
 * Apply an rbd diff to a raw file or block device, and build the end snapshot's record as it goes:
 * untouched blocks keep the start record's hash, touched ones are hashed from what was written.
 * Records ascend, so both the image and the record are written in one sequential pass (flat memory).
 */
import type { FileHandle } from 'node:fs/promises'
import type { DataRecord, DiffHeader } from '../../delta-format/diff-records.js'
import { recordEnd } from '../../delta-format/diff-records.js'
import { type BlockHasher, HASH_BYTES, ZERO_HASH } from './block-hasher.js'
import { blockCount, type RecordReader, type RecordWriter } from './block-record.js'
import { ioError } from './file-volume.js'

export interface ApplyInput {
  readonly fh: FileHandle
  readonly path: string
  readonly kind: 'file' | 'block-device'
  readonly blockSize: number
  /** Size of the head before the diff. */
  readonly oldSize: number
  readonly header: DiffHeader
  readonly records: AsyncIterable<DataRecord>
  readonly hasher: BlockHasher
  /** The start snapshot's record (absent for a base: untouched blocks then read as zeros). */
  readonly from: RecordReader | undefined
  readonly writer: RecordWriter
  /** Base onto a block device: regions without records are written with zeros. */
  readonly zeroFillGaps: boolean
  /** The target reads as zeros already (a fresh sparse file): skip zero records and zero 4 KiB runs. */
  readonly sparse: boolean
  readonly signal: AbortSignal | undefined
}

export interface ApplyCounters {
  dataBytes: number
  zeroBytes: number
  extents: number
}

const ZEROS = Buffer.alloc(1 << 20)
const READBACK_BYTES = 1 << 20

export async function applyDiff(input: ApplyInput, c: ApplyCounters): Promise<void> {
  const { fh, blockSize: bs, header, writer } = input
  const newSize = header.size
  const newBlocks = blockCount(newSize, bs)
  if (input.kind === 'file' && newSize !== input.oldSize) {
    try {
      await fh.truncate(newSize)
    } catch (e) {
      throw ioError(input.path, 'resize', e)
    }
  }
  // Blocks whose bytes changed without a record covering them: the partial block at the old or new end.
  const resized = new Set<number>()
  if (newSize !== input.oldSize) {
    for (const s of [input.oldSize, newSize])
      if (s % bs !== 0 && Math.floor(s / bs) < newBlocks) resized.add(Math.floor(s / bs))
  }
  // Hashes known from full-block writes, and blocks touched partially (to hash by reading back).
  const known = new Map<number, Buffer>()
  const touched = new Set<number>(resized)

  const finalizeBefore = async (limit: number): Promise<void> => {
    // Every block < limit is final: no later record can touch it (records ascend).
    while (writer.next < Math.min(limit, newBlocks)) {
      const first = writer.next
      const end = Math.min(limit, newBlocks, first + Math.max(1, READBACK_BYTES / bs))
      const count = end - first
      const out = Buffer.allocUnsafe(count * HASH_BYTES)
      const old = input.from ? await input.from.read(first, count) : Buffer.alloc(0)
      let readBack: Buffer | undefined
      for (let i = 0; i < count; i++) {
        const b = first + i
        const k = known.get(b)
        if (k) {
          k.copy(out, i * HASH_BYTES)
          known.delete(b)
        } else if (touched.has(b)) {
          readBack ??= await readBlocks(input, first, count, newSize)
          const start = i * bs
          input.hasher.hashInto(
            readBack.subarray(start, Math.min(start + bs, readBack.length)),
            out,
            i * HASH_BYTES,
          )
          touched.delete(b)
        } else if ((i + 1) * HASH_BYTES <= old.length) {
          old.copy(out, i * HASH_BYTES, i * HASH_BYTES, (i + 1) * HASH_BYTES)
        } else {
          ZERO_HASH.copy(out, i * HASH_BYTES)
        }
      }
      await writer.append(out)
    }
  }

  let lastEnd = 0
  for await (const r of input.records) {
    input.signal?.throwIfAborted()
    if (input.zeroFillGaps && r.offset > lastEnd) await writeZeros(input, lastEnd, r.offset)
    await finalizeBefore(Math.floor(r.offset / bs))
    const end = recordEnd(r)
    if (r.kind === 'write') {
      if (input.sparse) await writeSparse(input, r.data, r.offset)
      else await writeAt(input, r.data, r.offset)
      c.dataBytes += r.data.length
    } else {
      if (!input.sparse) await writeZeros(input, r.offset, end)
      c.zeroBytes += r.length
    }
    c.extents++
    noteTouched(r, bs, newSize, input.hasher, known, touched)
    lastEnd = end
  }
  if (input.zeroFillGaps && newSize > lastEnd) await writeZeros(input, lastEnd, newSize)
  await finalizeBefore(newBlocks)
}

/** Remember which blocks a record changed; full blocks get their hash now, from the data in hand. */
function noteTouched(
  r: DataRecord,
  bs: number,
  size: number,
  hasher: BlockHasher,
  known: Map<number, Buffer>,
  touched: Set<number>,
): void {
  const end = recordEnd(r)
  for (let b = Math.floor(r.offset / bs); b * bs < end; b++) {
    const bStart = b * bs
    const bEnd = Math.min(bStart + bs, size)
    if (r.offset <= bStart && end >= bEnd) {
      const h = Buffer.allocUnsafe(HASH_BYTES)
      if (r.kind === 'zero') ZERO_HASH.copy(h)
      else hasher.hashInto(r.data.subarray(bStart - r.offset, bEnd - r.offset), h, 0)
      known.set(b, h)
      touched.delete(b)
    } else {
      known.delete(b)
      touched.add(b)
    }
  }
}

async function readBlocks(input: ApplyInput, first: number, count: number, size: number): Promise<Buffer> {
  const start = first * input.blockSize
  const len = Math.min(count * input.blockSize, size - start)
  const buf = Buffer.alloc(len)
  let got = 0
  try {
    while (got < len) {
      const { bytesRead } = await input.fh.read(buf, got, len - got, start + got)
      if (bytesRead === 0) break
      got += bytesRead
    }
  } catch (e) {
    throw ioError(input.path, 'read back', e)
  }
  return buf
}

async function writeAt(input: ApplyInput, data: Buffer, offset: number): Promise<void> {
  let done = 0
  try {
    while (done < data.length) {
      const { bytesWritten } = await input.fh.write(data, done, data.length - done, offset + done)
      done += bytesWritten
    }
  } catch (e) {
    throw ioError(input.path, 'write', e)
  }
}

const SPARSE_CHUNK = 4096

/** Write only the 4 KiB-aligned pieces that are not all zeros (holes stay holes, as rbd import does). */
async function writeSparse(input: ApplyInput, data: Buffer, offset: number): Promise<void> {
  let pos = 0
  let pending = -1
  const zero = ZEROS.subarray(0, SPARSE_CHUNK)
  while (pos < data.length) {
    const next = Math.min(
      data.length,
      (Math.floor((offset + pos) / SPARSE_CHUNK) + 1) * SPARSE_CHUNK - offset,
    )
    const piece = data.subarray(pos, next)
    const isZero = piece.equals(zero.subarray(0, piece.length))
    if (!isZero && pending < 0) pending = pos
    if (isZero && pending >= 0) {
      await writeAt(input, data.subarray(pending, pos), offset + pending)
      pending = -1
    }
    pos = next
  }
  if (pending >= 0) await writeAt(input, data.subarray(pending), offset + pending)
}

async function writeZeros(input: ApplyInput, from: number, to: number): Promise<void> {
  for (let pos = from; pos < to; pos += ZEROS.length) {
    await writeAt(input, ZEROS.subarray(0, Math.min(ZEROS.length, to - pos)), pos)
  }
}
