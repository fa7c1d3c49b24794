/**
 * Before an RBD apply writes: the destination's state read at once, the checks (the head guard against
 * import-diff's trust in snapshot names, a fresh image for a base) and the apply marker in image-meta.
 */
import { SnapferryError } from '../../errors/snapferry-error.js'
import { assertEndSnapshotAbsent, type decodeRequestedDelta } from '../import-preconditions.js'
import { isOwnSnapshot } from '../snapshot-names.js'
import type { ImportRequest, SnapshotInfo } from '../volume-driver.js'
import type { RbdApplyContext } from './rbd-apply.js'
import type { RbdExtent } from './rbd-image.js'

/** image-meta key set while an apply runs: tells an interrupted apply from foreign writes. */
export const MARKER_KEY = 'snapferry.applying'

export interface Marker {
  readonly fromSnap: string | null
  readonly toSnap: string
  readonly startedAt: string
}

export type Decoded = Awaited<ReturnType<typeof decodeRequestedDelta>>
export type Facts = Awaited<ReturnType<typeof readState>['facts']>

/**
 * A delta's checks need only the destination's state, not the delta: they run, and the marker is set,
 * while the first bytes are still on their way (the source's snapshot and export start), so import-diff
 * can write from the first byte on. In a final round the destination's writes are what the window waits
 * for, and the marker cost 40–220 ms of them on the downtime bench (BENCHMARKS.md). The delta's header is
 * still checked against the request before import-diff gets a byte; a stream that fails before that
 * takes its marker back (nothing was written).
 */
export async function checkDeltaAndMark(
  d: RbdApplyContext,
  req: ImportRequest,
  state: ReturnType<typeof readState>,
  facts: Promise<Facts>,
  decoding: Promise<Decoded>,
  phases: Record<string, number>,
  since: () => number,
): Promise<Decoded> {
  decoding.catch(() => {}) // surfaced below, once the checks are done
  const prepared = d.img.prepareMetaSet(req.signal)
  prepared.catch(() => {})
  let marked = false
  try {
    try {
      const { size, snaps, marker } = await facts
      assertEndSnapshotAbsent(snaps, req, d.label)
      await guardHead(d, req, snaps, marker, size ?? 0, state.changes)
    } catch (e) {
      // A stream that fails says more than a check its request failed too (a delta asked backwards is
      // the source's STATE_MISMATCH, not a start snapshot missing here): its error wins, as when the
      // checks waited for the first bytes.
      await decoding
      throw e
    }
    phases['checks passed'] = since()
    // Without a prepared image the set opens one itself, as it did before.
    await prepared.catch(() => undefined)
    await setMarker(d, req)
    marked = true
    phases['marker set'] = since()
  } finally {
    if (!marked) await (await prepared.catch(() => undefined))?.release().catch(() => {})
  }
  try {
    return await decoding
  } catch (e) {
    // The next apply waits for this (previousCleanup), so it cannot remove a marker set after it.
    d.afterApply(d.img.metaRemove(MARKER_KEY).catch(() => {}))
    throw e
  }
}

/** A base's checks need the delta's size: they run once its first bytes arrived. */
export async function checkBaseAndMark(
  d: RbdApplyContext,
  req: ImportRequest,
  facts: Promise<Facts>,
  decoding: Promise<Decoded>,
  phases: Record<string, number>,
  since: () => number,
): Promise<Decoded> {
  const [decoded, { size, snaps, marker }] = await Promise.all([decoding, facts])
  assertEndSnapshotAbsent(snaps, req, d.label)
  await prepareBase(d, size, marker, req, decoded.header.size)
  phases['checks passed'] = since()
  await setMarker(d, req)
  phases['marker set'] = since()
  return decoded
}

async function setMarker(d: RbdApplyContext, req: ImportRequest): Promise<void> {
  const m: Marker = {
    fromSnap: req.fromSnap ?? null,
    toSnap: req.toSnap,
    startedAt: new Date().toISOString(),
  }
  await d.img.metaSet(MARKER_KEY, JSON.stringify(m), req.signal)
}

/** Size, snapshots and marker of the destination, and (for a delta) the head's changes since its start, fetched at once. */
export function readState(d: RbdApplyContext, req: ImportRequest) {
  const size = d.img.size(req.signal)
  const snaps = d.listSnapshots(req.signal)
  // The previous apply's marker removal must land before this apply reads (and later sets) the marker.
  const marker = d.previousCleanup().then(() => d.marker(req.signal))
  // Speculative: only consulted when the guard gets that far; a failure here surfaces there or nowhere.
  // Object-granular (the object map): it only has to prove that nothing changed, and the exact diff
  // lists every object of the image, which inside a cutover window costs seconds on a large one.
  const changes =
    req.fromSnap !== undefined && !req.repair
      ? d.img.diff(req.fromSnap, req.signal, { wholeObject: true })
      : undefined
  changes?.catch(() => {})
  const facts = (async () => {
    const s = await size
    if (s === undefined) {
      await Promise.allSettled([snaps, marker])
      return { size: s, snaps: [] as SnapshotInfo[], marker: undefined }
    }
    const list = await snaps
    const m = await marker
    // A finished apply's marker (its end snapshot exists) is no marker.
    return { size: s, snaps: list, marker: m && list.some((x) => x.name === m.toSnap) ? undefined : m }
  })()
  // Keep rejections of the parallel reads from surfacing unhandled when an earlier one already failed.
  snaps.catch(() => {})
  marker.catch(() => {})
  return { facts, changes }
}

/** import-diff only checks that the start snapshot exists: prove the head still equals it. */
export async function guardHead(
  d: RbdApplyContext,
  req: ImportRequest,
  snaps: readonly SnapshotInfo[],
  marker: Marker | undefined,
  headSize: number,
  prefetched?: Promise<RbdExtent[]>,
): Promise<void> {
  const from = req.fromSnap as string
  if (!snaps.some((s) => s.name === from)) {
    throw new SnapferryError('SNAPSHOT_NOT_FOUND', `start snapshot '${from}' does not exist on ${d.label}`, {
      hint: 'run again so snapferry reconciles and, if needed, ships a new base',
      details: { volume: d.label, snapshot: from },
    })
  }
  if (req.repair) return
  const head = await d.headState(from, marker, snaps, headSize, req.signal, prefetched)
  if (head.matches) return
  throw new SnapferryError(
    'DEST_HEAD_DIVERGED',
    `destination ${d.label} no longer equals snapshot '${from}': ${head.detail}`,
    {
      hint:
        head.reason === 'interrupted-apply'
          ? '`snapferry run` repairs this by re-sending the changed extents'
          : 'something wrote to the destination image; find out what, then run with --repair-destination',
      details: { volume: d.label, snapshot: from, reason: head.reason },
    },
  )
}

/**
 * A base goes onto a freshly created image of the diff's size: only allocated data travels. An existing
 * image of that size with no snapshots and no data (a volume Cinder just created) is used as it is.
 */
export async function prepareBase(
  d: RbdApplyContext,
  existingSize: number | undefined,
  marker: Marker | undefined,
  req: ImportRequest,
  size: number,
): Promise<void> {
  if (existingSize === size && marker === undefined) {
    const [snaps, extents] = await Promise.all([d.img.snapshots(), d.img.diff(undefined)])
    if (snaps.length === 0 && extents.length === 0) return
  }
  if (existingSize !== undefined) {
    if (marker?.fromSnap !== null && !req.overwrite) {
      throw new SnapferryError(
        'VOLUME_EXISTS',
        `destination ${d.label} already exists and has no snapferry snapshot to continue from`,
        {
          hint: 'remove or rename it (`rbd mv`), or run with --overwrite-destination to replace it',
          details: { volume: d.label },
        },
      )
    }
    const all = await d.img.snapshots()
    const foreign = all.filter((s) => !isOwnSnapshot(s.name))
    if (foreign.length > 0) {
      throw new SnapferryError(
        'VOLUME_EXISTS',
        `destination ${d.label} has snapshots snapferry did not make (${foreign.map((s) => s.name).join(', ')}); refusing to replace it`,
        {
          hint: 'remove the image yourself if it may go',
        },
      )
    }
    for (const s of all) await d.deleteSnapshot(s.name)
    await d.img.remove()
  }
  await d.img.create(size)
}
