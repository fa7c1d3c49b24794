/**
 * Applying a delta to an RBD image: preconditions (snapshots, the head guard against import-diff's trust
 * in snapshot names, a fresh image for a base), the apply marker in image-meta, then import-diff.
 */
import { tmpdir } from 'node:os'
import type { Readable } from 'node:stream'
import { encodeDiffV1 } from '../../delta-format/diff-encoder.js'
import { countBytes, countRecords, newCounters } from '../../delta-format/record-counters.js'
import { SnapferryError } from '../../errors/snapferry-error.js'
import { assertEndSnapshotAbsent, decodeRequestedDelta } from '../import-preconditions.js'
import { isOwnSnapshot } from '../snapshot-names.js'
import type { HeadState, ImportRequest, ImportResult, SnapshotInfo } from '../volume-driver.js'
import type { RbdDriverOptions } from './rbd-driver.js'
import type { RbdImage } from './rbd-image.js'
import { importDiffChunks, stageFileFor } from './rbd-import.js'

/** image-meta key set while an apply runs: tells an interrupted apply from foreign writes. */
export const MARKER_KEY = 'snapferry.applying'

export interface Marker {
  readonly fromSnap: string | null
  readonly toSnap: string
  readonly startedAt: string
}

/** What the apply needs from the driver. */
export interface RbdApplyContext {
  readonly img: RbdImage
  readonly opts: RbdDriverOptions
  readonly label: string
  listSnapshots(signal?: AbortSignal): Promise<SnapshotInfo[]>
  deleteSnapshot(name: string, signal?: AbortSignal): Promise<void>
  marker(signal?: AbortSignal): Promise<Marker | undefined>
  headState(
    snap: string,
    marker: Marker | undefined,
    snaps: readonly SnapshotInfo[],
    headSize: number,
    signal?: AbortSignal,
  ): Promise<HeadState>
}

export async function importIntoImage(
  d: RbdApplyContext,
  req: ImportRequest,
  source: Readable | AsyncIterable<Uint8Array>,
): Promise<ImportResult> {
  const t0 = performance.now()
  const decoded = await decodeRequestedDelta(source, req, d.label)
  const h = decoded.header
  const size = await d.img.size(req.signal)
  const snaps = size === undefined ? [] : await d.listSnapshots(req.signal)
  assertEndSnapshotAbsent(snaps, req, d.label)
  const marker = size === undefined ? undefined : await d.marker(req.signal)
  if (req.fromSnap !== undefined) {
    await guardHead(d, req, snaps, marker, size ?? 0)
  } else {
    await prepareBase(d, size !== undefined, marker, req, h.size)
  }
  const m: Marker = {
    fromSnap: req.fromSnap ?? null,
    toSnap: req.toSnap,
    startedAt: new Date().toISOString(),
  }
  await d.img.metaSet(MARKER_KEY, JSON.stringify(m), req.signal)
  const c = newCounters()
  // The stream's 't' names the snapshot import-diff creates: always the requested one.
  const chunks = countBytes(encodeDiffV1({ ...h, toSnap: req.toSnap }, countRecords(decoded.records, c)), c)
  const stageFile = stageFileFor(d.opts.stageDir ?? tmpdir(), d.img.spec, req.toSnap)
  const applyMode = await importDiffChunks(
    {
      conn: d.opts.connection,
      spec: d.img.spec,
      stageFile,
      stageLimit: d.opts.stageLimit,
      signal: req.signal,
    },
    chunks,
  )
  await d.img.metaRemove(MARKER_KEY, req.signal)
  return {
    ...c,
    streamBytes: decoded.bytesRead(),
    size: h.size,
    applyMode,
    durationMs: performance.now() - t0,
  }
}

/** import-diff only checks that the start snapshot exists: prove the head still equals it. */
export async function guardHead(
  d: RbdApplyContext,
  req: ImportRequest,
  snaps: readonly SnapshotInfo[],
  marker: Marker | undefined,
  headSize: number,
): Promise<void> {
  const from = req.fromSnap as string
  if (!snaps.some((s) => s.name === from)) {
    throw new SnapferryError('SNAPSHOT_NOT_FOUND', `start snapshot '${from}' does not exist on ${d.label}`, {
      hint: 'run again so snapferry reconciles and, if needed, ships a new base',
      details: { volume: d.label, snapshot: from },
    })
  }
  if (req.repair) return
  const head = await d.headState(from, marker, snaps, headSize, req.signal)
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

/** A base goes onto a freshly created image of the diff's size: only allocated data travels. */
export async function prepareBase(
  d: RbdApplyContext,
  exists: boolean,
  marker: Marker | undefined,
  req: ImportRequest,
  size: number,
): Promise<void> {
  if (exists) {
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
