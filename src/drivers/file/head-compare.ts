/** Compare a volume's head with a snapshot record: the extents where they differ (a full read). */
import { open } from 'node:fs/promises'
import type { Extent } from '../volume-driver.js'
import { blockHasher, HASH_BYTES } from './block-hasher.js'
import type { RecordReader } from './block-record.js'
import { ioError } from './file-volume.js'

const READ_BYTES = 1 << 20

/**
 * Extents (block-aligned, coalesced) where the head differs from the record. Blocks past the record's
 * size count as changed when they hold data (an interrupted apply may have grown the volume).
 */
export async function headChanges(
  path: string,
  size: number,
  record: RecordReader,
  signal?: AbortSignal,
): Promise<Extent[]> {
  const bs = record.header.blockSize
  const hasher = await blockHasher()
  const chunk = Math.max(bs, Math.floor(READ_BYTES / bs) * bs)
  const out: { offset: number; length: number }[] = []
  const fh = await open(path, 'r').catch((e) => {
    throw ioError(path, 'open', e)
  })
  try {
    const buf = Buffer.allocUnsafe(chunk)
    for (let pos = 0; pos < size; pos += chunk) {
      signal?.throwIfAborted()
      const len = Math.min(chunk, size - pos)
      const { bytesRead } = await fh.read(buf, 0, len, pos)
      const n = Math.ceil(bytesRead / bs)
      const hashes = Buffer.allocUnsafe(n * HASH_BYTES)
      const old = await record.read(pos / bs, n)
      for (let b = 0; b < n; b++) {
        const s = b * bs
        const e = Math.min(s + bs, bytesRead)
        const isZero = hasher.hashInto(buf.subarray(s, e), hashes, b * HASH_BYTES)
        const hasOld = (b + 1) * HASH_BYTES <= old.length
        const differs = hasOld
          ? !hashes
              .subarray(b * HASH_BYTES, (b + 1) * HASH_BYTES)
              .equals(old.subarray(b * HASH_BYTES, (b + 1) * HASH_BYTES))
          : !isZero
        // A record of a different size also differs in its last (partial) block.
        const partialEnd = hasOld && pos / bs + b === record.header.blocks - 1 && record.header.size !== size
        if (differs || partialEnd) {
          const last = out[out.length - 1]
          if (last && last.offset + last.length === pos + s) last.length += e - s
          else out.push({ offset: pos + s, length: e - s })
        }
      }
    }
  } catch (e) {
    throw ioError(path, 'read', e)
  } finally {
    await fh.close()
  }
  return out
}
