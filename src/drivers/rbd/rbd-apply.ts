/**
 * Applying a delta to an RBD image: the checks and the apply marker (rbd-apply-checks.ts), then
 * import-diff, timed phase by phase.
 */
import { tmpdir } from 'node:os'
import type { Readable } from 'node:stream'
import { encodeDiffV1 } from '../../delta-format/diff-encoder.js'
import { countBytes, countRecords, newCounters } from '../../delta-format/record-counters.js'
import { decodeRequestedDelta } from '../import-preconditions.js'
import type { Extent, HeadState, ImportRequest, ImportResult, SnapshotInfo } from '../volume-driver.js'
import {
  checkBaseAndMark,
  checkDeltaAndMark,
  MARKER_KEY,
  type Marker,
  readState,
} from './rbd-apply-checks.js'
import { type StreamingRbd, stopImportDiff } from './rbd-cli.js'
import type { RbdDriverOptions } from './rbd-driver.js'
import type { RbdImageCalls } from './rbd-image.js'
import { importDiffChunks, stageFileFor, startImportDiff } from './rbd-import.js'

export { MARKER_KEY, type Marker } from './rbd-apply-checks.js'

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
