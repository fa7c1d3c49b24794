/** Count a diff as it streams: bytes on the wire, data and zero bytes, extents. */
import type { DataRecord } from './diff-records.js'
import { recordLength } from './diff-records.js'

export interface DiffCounters {
  streamBytes: number
  dataBytes: number
  zeroBytes: number
  extents: number
}

export function newCounters(): DiffCounters {
  return { streamBytes: 0, dataBytes: 0, zeroBytes: 0, extents: 0 }
}

/** A large extent arriving as several consecutive records counts once. */
export async function* countRecords(
  records: AsyncIterable<DataRecord>,
  c: DiffCounters,
): AsyncGenerator<DataRecord> {
  let prevEnd = -1
  let prevKind = ''
  for await (const r of records) {
    if (r.offset !== prevEnd || r.kind !== prevKind) c.extents++
    prevEnd = r.offset + recordLength(r)
    prevKind = r.kind
    if (r.kind === 'write') c.dataBytes += r.data.length
    else c.zeroBytes += r.length
    yield r
  }
}

export async function* countBytes(chunks: AsyncIterable<Buffer>, c: DiffCounters): AsyncGenerator<Buffer> {
  for await (const b of chunks) {
    c.streamBytes += b.length
    yield b
  }
}
