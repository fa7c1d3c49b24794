/** What every driver's importDiff checks before touching the destination, and how it treats its source. */
import type { Readable } from 'node:stream'
import { decodeDiff } from '../delta-format/diff-decoder.js'
import type { DiffHeader } from '../delta-format/diff-records.js'
import { SnapferryError } from '../errors/snapferry-error.js'
import { assertOwnSnapshotName } from './snapshot-names.js'
import type { ImportRequest, SnapshotInfo } from './volume-driver.js'

/** Read the delta's header and check it is the one requested; its records then stream lazily. */
export async function decodeRequestedDelta(
  source: Readable | AsyncIterable<Uint8Array>,
  req: ImportRequest,
  label: string,
) {
  assertOwnSnapshotName(req.toSnap, label)
  const decoded = await decodeDiff(source)
  assertStreamMatches(decoded.header, req, label)
  return decoded
}

/** The stream must be the delta the caller asked for: same start, same end (a head export has no end). */
export function assertStreamMatches(h: DiffHeader, req: ImportRequest, label: string): void {
  if ((h.fromSnap ?? undefined) === req.fromSnap && (h.toSnap === undefined || h.toSnap === req.toSnap))
    return
  throw new SnapferryError(
    'STATE_MISMATCH',
    `delta for ${label} goes from '${h.fromSnap ?? '(nothing)'}' to '${h.toSnap ?? '(head)'}', expected '${req.fromSnap ?? '(nothing)'}' to '${req.toSnap}'`,
    { hint: 'this stream belongs to another round or volume', details: { volume: label } },
  )
}

/** Applying a delta whose end snapshot exists would apply it twice (rbd: EEXIST). */
export function assertEndSnapshotAbsent(
  snaps: readonly SnapshotInfo[],
  req: ImportRequest,
  label: string,
): void {
  if (!snaps.some((s) => s.name === req.toSnap && s.complete)) return
  throw new SnapferryError('SNAPSHOT_EXISTS', `end snapshot '${req.toSnap}' already exists on ${label}`, {
    hint: 'this delta was applied already; resume from that snapshot instead',
    details: { volume: label, snapshot: req.toSnap },
  })
}

/** Run an import; on failure destroy its source, so the producer never blocks on a stream nobody reads. */
export async function destroyingSourceOnError<T>(
  source: Readable | AsyncIterable<Uint8Array>,
  run: () => Promise<T>,
): Promise<T> {
  try {
    return await run()
  } catch (e) {
    if (typeof (source as Readable).destroy === 'function') (source as Readable).destroy()
    throw e
  }
}
