/** The typed view of an rbd diff stream: one header, then ascending non-overlapping data records. */

export interface DiffHeader {
  /** Start snapshot ('f'); absent for a base (full) diff. */
  readonly fromSnap?: string | undefined
  /** End snapshot ('t'); absent when the diff ends at the image head. */
  readonly toSnap?: string | undefined
  /** Image size at the end snapshot ('s'). */
  readonly size: number
  /** v2 only: the end snapshot is protected ('p'). */
  readonly protected?: boolean | undefined
}

/** Data to write at `offset`. A large 'w' record arrives as several consecutive WriteRecords. */
export interface WriteRecord {
  readonly kind: 'write'
  readonly offset: number
  readonly data: Buffer
}

/** A range that reads as zeros (discarded or zero-filled). */
export interface ZeroRecord {
  readonly kind: 'zero'
  readonly offset: number
  readonly length: number
}

export type DataRecord = WriteRecord | ZeroRecord

export function recordLength(r: DataRecord): number {
  return r.kind === 'write' ? r.data.length : r.length
}

export function recordEnd(r: DataRecord): number {
  return r.offset + recordLength(r)
}

/** The part of a record within [from, to). Precondition: it overlaps. */
export function sliceRecord(r: DataRecord, from: number, to: number): DataRecord {
  const start = Math.max(from, r.offset)
  const end = Math.min(to, recordEnd(r))
  if (r.kind === 'write')
    return { kind: 'write', offset: start, data: r.data.subarray(start - r.offset, end - r.offset) }
  return { kind: 'zero', offset: start, length: end - start }
}

/** A decoded diff: its header, and its records as a stream (read each once, in order). */
export interface DecodedDiff {
  readonly header: DiffHeader
  readonly records: AsyncIterable<DataRecord>
}
