/**
 * RbdDriver: Ceph RBD images through the real `rbd` CLI. Snapshots are rbd snapshots (frozen, so an
 * export can be repeated); deltas are `rbd export-diff` / `rbd import-diff` streams, decoded on the way
 * through so every byte is validated and counted. Import-diff trusts snapshot names, so before every
 * apply the head is proven equal to the start snapshot (`rbd diff --from-snap` empty). docs/RBD.md.
 */
import { createHash } from 'node:crypto'
import type { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { encodeDiffV1 } from '../../delta-format/diff-encoder.js'
import type { DataRecord } from '../../delta-format/diff-records.js'
import { mergeRecords } from '../../delta-format/merge-diffs.js'
import { countBytes, countRecords, newCounters } from '../../delta-format/record-counters.js'
import { SnapferryError } from '../../errors/snapferry-error.js'
import { destroyingSourceOnError } from '../import-preconditions.js'
import { assertOwnSnapshotName, isOwnSnapshot } from '../snapshot-names.js'
import type {
  ChecksumResult,
  DriverCapabilities,
  ExportRequest,
  ExportResult,
  Extent,
  HeadState,
  ImportRequest,
  ImportResult,
  SnapshotInfo,
  VolumeDriver,
  VolumeInfo,
} from '../volume-driver.js'
import { LibrbdImage } from './librbd-image.js'
import { importIntoImage, MARKER_KEY, type Marker, type RbdApplyContext } from './rbd-apply.js'
import { type RbdConnection, rbdStream } from './rbd-cli.js'
import { exportDiffRecords, snapshotExtents } from './rbd-export.js'
import { RbdImage, type RbdImageCalls, type RbdSnapshot } from './rbd-image.js'

export interface RbdDriverOptions {
  readonly pool: string
  readonly namespace?: string | undefined
  readonly image: string
  readonly connection: RbdConnection
  /** `--whole-object`: whole objects instead of exact extents (fewer, bigger extents). */
  readonly wholeObject: boolean
  readonly stageDir?: string | undefined
  readonly stageLimit: number
  readonly label?: string | undefined
  /**
   * Short calls (snapshots, listings, diffs, image-meta) in one open librbd session (python3-rbd) where
   * it is usable, instead of an rbd process each. Default true; false: the rbd CLI for everything.
   */
  readonly librbd?: boolean | undefined
}

export class RbdDriver implements VolumeDriver {
  readonly capabilities: DriverCapabilities = Object.freeze({
    frozenSnapshots: true,
    diffScansVolume: false,
    repeatableExport: true,
    headDiff: true,
    rollback: false,
    resize: true,
    exportInclude: true,
  })
  readonly #o: RbdDriverOptions
  readonly #img: RbdImageCalls
  readonly #ctx: RbdApplyContext
  /** Work left running after an apply returned (removing its marker); the next apply waits for it. */
  #cleanup: Promise<unknown> = Promise.resolve()
  readonly spec: string

  constructor(o: RbdDriverOptions) {
    this.#o = Object.freeze({ ...o })
    this.spec = `${o.pool}/${o.namespace ? `${o.namespace}/` : ''}${o.image}`
    this.#img =
      o.librbd === false
        ? new RbdImage(o.connection, this.spec, this.#label)
        : new LibrbdImage(o.connection, this.spec, this.#label)
    this.#ctx = {
      img: this.#img,
      opts: this.#o,
      label: this.#label,
      listSnapshots: (signal) => this.listSnapshots(signal),
      deleteSnapshot: (name, signal) => this.deleteSnapshot(name, signal),
      marker: (signal) => this.#marker(signal),
      afterApply: (p) => {
        this.#cleanup = p.catch(() => {})
      },
      previousCleanup: () => this.#cleanup,
      headState: (snap, marker, snaps, size, signal, prefetched) =>
        this.#checkHead(snap, marker, snaps, size, signal, prefetched),
    }
  }

  get #label(): string {
    return this.#o.label ?? `rbd image ${this.spec}`
  }

  async describe(signal?: AbortSignal): Promise<VolumeInfo> {
    const size = await this.#img.size(signal)
    return { exists: size !== undefined, kind: 'rbd-image', size: size ?? 0, location: this.spec }
  }

  async listSnapshots(signal?: AbortSignal): Promise<SnapshotInfo[]> {
    return (await this.#img.snapshots(signal))
      .filter((s) => isOwnSnapshot(s.name))
      .map((s) => ({
        name: s.name,
        complete: true,
        size: s.size,
        createdAt: new Date(s.timestamp).toISOString(),
      }))
  }

  async createSnapshot(name: string, signal?: AbortSignal): Promise<void> {
    assertOwnSnapshotName(name, this.#label)
    try {
      await this.#img.snapCreate(name, signal)
    } catch (e) {
      if ((e as SnapferryError).code !== 'VOLUME_EXISTS') throw e
      throw new SnapferryError('SNAPSHOT_EXISTS', `snapshot '${name}' already exists on ${this.#label}`, {
        details: { volume: this.#label, snapshot: name },
      })
    }
  }

  async deleteSnapshot(name: string, signal?: AbortSignal): Promise<void> {
    assertOwnSnapshotName(name, this.#label)
    try {
      await this.#img.snapRemove(name, signal)
    } catch (e) {
      if ((e as SnapferryError).code !== 'VOLUME_NOT_FOUND') throw e
    }
  }

  async exportDiff(req: ExportRequest, sink: Writable): Promise<ExportResult> {
    const t0 = performance.now()
    assertOwnSnapshotName(req.toSnap, this.#label)
    if (req.fromSnap !== undefined) assertOwnSnapshotName(req.fromSnap, this.#label)
    // The snapshot check and export-diff's start (a process and a cluster connection each) overlap; the
    // check's clear error wins over rbd's bare ENOENT, and a refused export is killed unread.
    const [snaps, started] = await Promise.allSettled([
      this.#img.snapshots(req.signal),
      exportDiffRecords(this.#o, this.spec, req.fromSnap, req.toSnap),
    ])
    try {
      if (snaps.status === 'rejected') throw snaps.reason
      this.#checkExportable(snaps.value, req)
    } catch (e) {
      if (started.status === 'fulfilled') {
        // Unread output would keep the process from ever closing: drop it, then stop rbd.
        started.value.process.stdout?.destroy()
        started.value.process.kill()
        await started.value.process.done.catch(() => {})
      }
      throw e
    }
    if (started.status === 'rejected') throw started.reason
    const exp = started.value
    const c = newCounters()
    let records: AsyncIterable<DataRecord> = exp.records
    if (req.include && req.include.length > 0) {
      // Repair: the extents the destination got wrong, read from the end snapshot; the delta wins on overlap.
      records = mergeRecords(
        snapshotExtents(this.#o.connection, this.spec, req.toSnap, exp.header.size, req.include),
        exp.records,
      )
    }
    try {
      await pipeline(
        countBytes(encodeDiffV1(exp.header, countRecords(records, c)), c),
        sink,
        req.signal ? { signal: req.signal } : {},
      )
      await exp.process.done
    } catch (e) {
      // Unread output would keep the process from ever closing (the sink can fail before rbd is done).
      exp.process.stdout?.destroy()
      exp.process.kill()
      // When rbd itself failed, its error says why; the stream error is only the consequence.
      await exp.process.done.catch((rbdErr: unknown) => {
        throw rbdErr
      })
      throw e
    }
    return { ...c, scannedBytes: 0, size: exp.header.size, durationMs: performance.now() - t0 }
  }

  /** rbd reports a missing snapshot as a bare ENOENT and a backwards delta as EINVAL: say what is wrong. */
  #checkExportable(snaps: readonly RbdSnapshot[], req: ExportRequest): void {
    const ids = new Map(snaps.map((s) => [s.name, s.id]))
    for (const [role, name] of [
      ['end', req.toSnap],
      ['start', req.fromSnap],
    ] as const) {
      if (name !== undefined && !ids.has(name)) {
        throw new SnapferryError(
          'SNAPSHOT_NOT_FOUND',
          `${role} snapshot '${name}' does not exist on ${this.#label}`,
          {
            hint:
              role === 'start'
                ? 'the source lost the snapshot this delta builds on: run again so snapferry reconciles'
                : 'create the snapshot before exporting it',
            details: { volume: this.#label, snapshot: name },
          },
        )
      }
    }
    if (req.fromSnap !== undefined && (ids.get(req.fromSnap) as number) > (ids.get(req.toSnap) as number)) {
      throw new SnapferryError(
        'STATE_MISMATCH',
        `start snapshot '${req.fromSnap}' is newer than end snapshot '${req.toSnap}' on ${this.#label}: a delta goes forward`,
        {
          hint: 'swap them: export from the older snapshot to the newer one',
          details: { volume: this.#label },
        },
      )
    }
  }

  importDiff(req: ImportRequest, source: Readable | AsyncIterable<Uint8Array>): Promise<ImportResult> {
    return destroyingSourceOnError(source, () => importIntoImage(this.#ctx, req, source))
  }

  async checkHead(snap: string, signal?: AbortSignal): Promise<HeadState> {
    const size = await this.#img.size(signal)
    if (size === undefined)
      return { matches: false, reason: 'missing', detail: `${this.spec} does not exist` }
    return this.#checkHead(snap, await this.#marker(signal), await this.listSnapshots(signal), size, signal)
  }

  async #checkHead(
    snap: string,
    marker: Marker | undefined,
    snaps: readonly SnapshotInfo[],
    headSize: number,
    signal?: AbortSignal,
    prefetched?: Promise<readonly Extent[]>,
  ): Promise<HeadState> {
    // A marker whose end snapshot exists is from an apply that finished (import-diff creates the end
    // snapshot last) and whose marker removal did not happen or has not happened yet.
    if (marker && !snaps.some((x) => x.name === marker.toSnap))
      return {
        matches: false,
        reason: 'interrupted-apply',
        detail: `an apply of '${marker.toSnap}' started at ${marker.startedAt} did not finish`,
      }
    const s = snaps.find((x) => x.name === snap)
    if (!s) return { matches: false, reason: 'missing', detail: `snapshot '${snap}' does not exist` }
    let changed = prefetched ? await prefetched : await this.headChangesSince(snap, signal)
    // A prefetched diff may be object-granular (rbd-apply's): empty proves the head equals the snapshot,
    // anything else is settled, and named, by the exact extents.
    if (prefetched && changed.length > 0) changed = await this.headChangesSince(snap, signal)
    if (changed.length === 0 && headSize === s.size) return { matches: true }
    const bytes = changed.reduce((n, e) => n + e.length, 0)
    return {
      matches: false,
      reason: 'modified',
      detail: `${bytes} bytes in ${changed.length} extents differ from '${snap}'${headSize !== s.size ? `, size ${headSize} instead of ${s.size}` : ''}`,
    }
  }

  async headChangesSince(snap: string, signal?: AbortSignal): Promise<Extent[]> {
    return (await this.#img.diff(snap, signal)).map((e) => ({ offset: e.offset, length: e.length }))
  }

  async checksum(at: 'head' | { readonly snapshot: string }, signal?: AbortSignal): Promise<ChecksumResult> {
    const target = at === 'head' ? this.spec : `${this.spec}@${at.snapshot}`
    const p = rbdStream(this.#o.connection, ['export', '--no-progress', target, '-'], `export of ${target}`, {
      stdin: false,
      stdout: true,
    })
    const hash = createHash('sha256')
    let size = 0
    try {
      for await (const chunk of p.stdout as AsyncIterable<Buffer>) {
        signal?.throwIfAborted()
        hash.update(chunk)
        size += chunk.length
      }
      await p.done
    } finally {
      p.kill()
    }
    return { algorithm: 'sha256', digest: hash.digest('hex'), size }
  }

  /** Allocated bytes that a delta from `fromSnap` (or a base) would ship, from `rbd diff` — cheap with fast-diff. */
  async estimateDiff(fromSnap: string | undefined, signal?: AbortSignal): Promise<number> {
    return (await this.#img.diff(fromSnap, signal)).filter((e) => e.exists).reduce((n, e) => n + e.length, 0)
  }

  async #marker(signal?: AbortSignal): Promise<Marker | undefined> {
    const raw = await this.#img.metaGet(MARKER_KEY, signal)
    return raw === undefined ? undefined : (JSON.parse(raw) as Marker)
  }
}
