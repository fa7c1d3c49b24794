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
import type { Extent, HeadState, ImportRequest, ImportResult, SnapshotInfo } from '../volume-driver.js'
import { type StreamingRbd, stopImportDiff } from './rbd-cli.js'
import type { RbdDriverOptions } from './rbd-driver.js'
import type { RbdExtent, RbdImageCalls } from './rbd-image.js'
import { importDiffChunks, stageFileFor, startImportDiff } from './rbd-import.js'

/** image-meta key set while an apply runs: tells an interrupted apply from foreign writes. */
export const MARKER_KEY = 'snapferry.applying'

export interface Marker {
  readonly fromSnap: string | null
  readonly toSnap: string
  readonly startedAt: string
}

/** What the apply needs from the driver. */
export interface RbdApplyContext {
  readonly img: RbdImageCalls
  readonly opts: RbdDriverOptions
  readonly label: string
  listSnapshots(signal?: AbortSignal): Promise<SnapshotInfo[]>
  deleteSnapshot(name: string, signal?: AbortSignal): Promise<void>
  marker(signal?: AbortSignal): Promise<Marker | undefined>
  /** Hand over work that may finish after the apply returns (the next apply waits for it). */
  afterApply(p: Promise<unknown>): void
  /** The previous apply's leftover work (settles, never rejects). */
  previousCleanup(): Promise<unknown>
  headState(
    snap: string,
    marker: Marker | undefined,
    snaps: readonly SnapshotInfo[],
    headSize: number,
    signal?: AbortSignal,
    /** The head's changes since `snap`, when already being fetched. */
    prefetched?: Promise<readonly Extent[]>,
  ): Promise<HeadState>
}

export async function importIntoImage(
  d: RbdApplyContext,
  req: ImportRequest,
  source: Readable | AsyncIterable<Uint8Array>,
): Promise<ImportResult> {
  const t0 = performance.now()
  // Every read the checks need runs at once, while the delta's first bytes are still on their way: each
  // rbd call costs a process start and a cluster connection, and they add up inside a cutover window.
  const state = readState(d, req)
  // A delta's import-diff starts now, beside the checks (a process start and a cluster connection off
  // the critical path); it reads nothing until the checks passed and the marker is set. A base's image
  // may not exist yet, and a staged apply starts its own.
  const early =
    req.fromSnap !== undefined && d.opts.stageLimit === 0
      ? startImportDiff(d.opts.connection, d.img.spec)
      : undefined
  try {
    return await applyWith(d, req, source, state, early, t0)
  } finally {
    if (early) await stopImportDiff(early)
  }
}

async function applyWith(
  d: RbdApplyContext,
  req: ImportRequest,
  source: Readable | AsyncIterable<Uint8Array>,
  state: ReturnType<typeof readState>,
  early: StreamingRbd | undefined,
  t0: number,
): Promise<ImportResult> {
  const since = () => Math.round(performance.now() - t0)
  const phases: Record<string, number> = {}
  const decoding = decodeRequestedDelta(source, req, d.label).then((x) => {
    phases['first bytes'] = since()
    return x
  })
  const facts = state.facts.then((x) => {
    phases['destination state'] = since()
    return x
  })
  const decoded =
    req.fromSnap !== undefined
      ? await checkDeltaAndMark(d, req, state, facts, decoding, phases, since)
      : await checkBaseAndMark(d, req, facts, decoding, phases, since)
  const h = decoded.header
  const c = newCounters()
  // The stream's 't' names the snapshot import-diff creates: always the requested one.
  const waits = { forDelta: 0, forDestination: 0 }
  const chunks = timeWaits(
    countBytes(encodeDiffV1({ ...h, toSnap: req.toSnap }, countRecords(decoded.records, c)), c),
    waits,
    // The whole delta arrived and was handed on (streamed: to import-diff's stdin; staged: to the stage
    // file); what follows is import-diff's own work (its last writes or a staged file's import, the end
    // snapshot, its exit). Its last writes are all that librbd's default cache (writearound) acknowledged
    // but the OSDs had not applied yet, up to rbd_cache_max_dirty: when the delta arrives faster than the
    // destination applies it, as in a final round, that backlog drains here (BENCHMARKS.md).
    () => {
      phases['delta written'] = since()
    },
  )
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
    early,
  )
  // The end snapshot now exists, which already tells a finished apply from an interrupted one; removing
  // the marker need not sit between the apply and its caller (inside a cutover window, that is ~0.1 s).
  d.afterApply(d.img.metaRemove(MARKER_KEY))
  return {
    ...c,
    streamBytes: decoded.bytesRead(),
    size: h.size,
    applyMode,
    phasesMs: { ...phases, 'import-diff done': since() },
    waitsMs: { forDelta: Math.round(waits.forDelta), forDestination: Math.round(waits.forDestination) },
    durationMs: performance.now() - t0,
  }
}

type Decoded = Awaited<ReturnType<typeof decodeRequestedDelta>>
type Facts = Awaited<ReturnType<typeof readState>['facts']>

/**
 * A delta's checks need only the destination's state, not the delta: they run, and the marker is set,
 * while the first bytes are still on their way (the source's snapshot and export start), so import-diff
 * can write from the first byte on. In a final round the destination's writes are what the window waits
 * for, and the marker cost 40–220 ms of them on the downtime bench (BENCHMARKS.md). The delta's header is
 * still checked against the request before import-diff gets a byte; a stream that fails before that
 * takes its marker back (nothing was written).
 */
async function checkDeltaAndMark(
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
async function checkBaseAndMark(
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
function readState(d: RbdApplyContext, req: ImportRequest) {
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

/** Where an apply's streaming time went (ApplyWaits): tells a slow link from a slow destination. */
async function* timeWaits(
  chunks: AsyncIterable<Buffer>,
  waits: { forDelta: number; forDestination: number },
  onEnd: () => void,
): AsyncGenerator<Buffer> {
  let t = performance.now()
  for await (const chunk of chunks) {
    const got = performance.now()
    waits.forDelta += got - t
    yield chunk
    t = performance.now()
    waits.forDestination += t - got
  }
  onEnd()
}
