/**
 * Merge two consecutive diffs into one, with `rbd merge-diff` semantics (MergeDiff.cc): the second
 * wins where they overlap; growth adds a zero extent; shrink drops what lies beyond the new size.
 */
import { SnapferryError } from '../errors/snapferry-error.js'
import type { DataRecord, DecodedDiff, DiffHeader } from './diff-records.js'
import { recordEnd, sliceRecord } from './diff-records.js'

export function mergeDiffs(first: DecodedDiff, second: DecodedDiff): DecodedDiff {
  if (first.header.toSnap !== second.header.fromSnap) {
    throw new SnapferryError(
      'DIFF_MERGE_MISMATCH',
      `cannot merge: the first diff ends at '${first.header.toSnap ?? '(head)'}' but the second starts at '${second.header.fromSnap ?? '(nothing)'}'`,
      { hint: 'merge consecutive diffs only: the first TO snapshot must equal the second FROM snapshot' },
    )
  }
  const header: DiffHeader = {
    fromSnap: first.header.fromSnap,
    toSnap: second.header.toSnap,
    size: second.header.size,
  }
  return { header, records: mergeRecords(firstWithSizeChange(first, second.header.size), second.records) }
}

/** The first diff as seen through the second's size: clipped on shrink, zero-extended on growth. */
async function* firstWithSizeChange(first: DecodedDiff, newSize: number): AsyncGenerator<DataRecord> {
  for await (const r of first.records) {
    if (r.offset >= newSize) continue
    yield recordEnd(r) > newSize ? sliceRecord(r, r.offset, newSize) : r
  }
  if (newSize > first.header.size)
    yield { kind: 'zero', offset: first.header.size, length: newSize - first.header.size }
}

/** Merge two ascending record streams; where they overlap the second wins. */
export async function* mergeRecords(
  firstRecords: AsyncIterable<DataRecord>,
  secondRecords: AsyncIterable<DataRecord>,
): AsyncGenerator<DataRecord> {
  const fa = firstRecords[Symbol.asyncIterator]()
  const sb = secondRecords[Symbol.asyncIterator]()
  const nextA = async () => {
    const n = await fa.next()
    return n.done ? undefined : n.value
  }
  const nextB = async () => {
    const n = await sb.next()
    return n.done ? undefined : n.value
  }
  let a = await nextA()
  let b = await nextB()
  while (a || b) {
    if (b && (!a || a.offset >= b.offset)) {
      // b starts first (or alone): emit it whole, then drop the parts of `first` it covers.
      yield b
      const bEnd = recordEnd(b)
      while (a && recordEnd(a) <= bEnd) a = await nextA()
      if (a && a.offset < bEnd) a = sliceRecord(a, bEnd, recordEnd(a))
      b = await nextB()
    } else if (a) {
      const limit = b ? b.offset : Number.POSITIVE_INFINITY
      if (recordEnd(a) <= limit) {
        yield a
        a = await nextA()
      } else {
        yield sliceRecord(a, a.offset, limit)
        a = sliceRecord(a, limit, recordEnd(a))
      }
    }
  }
}
