/** A tiny in-memory reference of what applying a diff means, used as the oracle in property tests. */
import type { DataRecord, DiffHeader } from '../../src/delta-format/diff-records.js'

export interface MemImage {
  data: Buffer
}

/** Apply records to an image held in memory: resize to header.size, then writes and zeroes. */
export function applyToBuffer(image: Buffer, header: DiffHeader, records: readonly DataRecord[]): Buffer {
  const out = Buffer.alloc(header.size)
  image.copy(out, 0, 0, Math.min(image.length, header.size))
  for (const r of records) {
    if (r.kind === 'write') r.data.copy(out, r.offset)
    else out.fill(0, r.offset, r.offset + r.length)
  }
  return out
}

export async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const x of it) out.push(x)
  return out
}

export async function* fromBuffers(bufs: Iterable<Buffer>, chunk = 0): AsyncGenerator<Buffer> {
  for (const b of bufs) {
    if (chunk > 0) for (let i = 0; i < b.length; i += chunk) yield b.subarray(i, i + chunk)
    else yield b
  }
}
