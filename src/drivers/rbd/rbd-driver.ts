/**
 * RbdDriver: Ceph RBD images through the real `rbd` CLI. Snapshots are rbd snapshots (frozen, so an
 * export can be repeated); deltas are `rbd export-diff` / `rbd import-diff` streams, decoded on the way
 * through so every byte is validated and counted. Import-diff trusts snapshot names, so before every
 * apply the head is proven equal to the start snapshot (`rbd diff --from-snap` empty). docs/RBD.md.
 */
import { createHash } from 'node:crypto'
import { tmpdir } from 'node:os'
import type { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { decodeDiff } from '../../delta-format/diff-decoder.js'
import { encodeDiffV1 } from '../../delta-format/diff-encoder.js'
import type { DataRecord } from '../../delta-format/diff-records.js'
import { recordLength } from '../../delta-format/diff-records.js'
import { mergeRecords } from '../../delta-format/merge-diffs.js'
import { SnapferryError } from '../../errors/snapferry-error.js'
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
import { type RbdConnection, rbd, rbdStream } from './rbd-cli.js'
import { exportDiffRecords, snapshotExtents } from './rbd-export.js'
import { importDiffChunks, stageFileFor } from './rbd-import.js'

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
}

const MARKER_KEY = 'snapferry.applying'

interface Counters {
  streamBytes: number
  dataBytes: number
  zeroBytes: number
  extents: number
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
  readonly spec: string

  constructor(o: RbdDriverOptions) {
    this.#o = Object.freeze({ ...o })
    this.spec = `${o.pool}/${o.namespace ? `${o.namespace}/` : ''}${o.image}`
  }

  get #label(): string {
    return this.#o.label ?? `rbd image ${this.spec}`
  }

  #rbd(args: readonly string[], what: string, signal?: AbortSignal) {
    return rbd(this.#o.connection, args, `${what} (${this.#label})`, signal)
  }

  async describe(signal?: AbortSignal): Promise<VolumeInfo> {
    try {
      const r = await this.#rbd(['info', '--format', 'json', this.spec], 'info', signal)
      return {
        exists: true,
        kind: 'rbd-image',
        size: (JSON.parse(r.stdout) as { size: number }).size,
        location: this.spec,
      }
    } catch (e) {
      if ((e as SnapferryError).code === 'VOLUME_NOT_FOUND')
        return { exists: false, kind: 'rbd-image', size: 0, location: this.spec }
      throw e
    }
  }

  async listSnapshots(signal?: AbortSignal): Promise<SnapshotInfo[]> {
    let out: string
    try {
      out = (await this.#rbd(['snap', 'ls', '--format', 'json', this.spec], 'snap ls', signal)).stdout
    } catch (e) {
      if ((e as SnapferryError).code === 'VOLUME_NOT_FOUND') return []
      throw e
    }
    const snaps = JSON.parse(out || '[]') as { name: string; size: number; timestamp: string }[]
    return snaps
      .filter((s) => isOwnSnapshot(s.name))
      .map((s) => ({
        name: s.name,
        complete: true,
        size: s.size,
        createdAt: new Date(s.timestamp).toISOString(),
      }))
  }

  /** Snapshot name → rbd snapshot id (ids grow with creation order). */
  async #snapIds(signal?: AbortSignal): Promise<Map<string, number>> {
    const out = (await this.#rbd(['snap', 'ls', '--format', 'json', this.spec], 'snap ls', signal)).stdout
    return new Map((JSON.parse(out || '[]') as { name: string; id: number }[]).map((s) => [s.name, s.id]))
  }

  async createSnapshot(name: string, signal?: AbortSignal): Promise<void> {
    assertOwnSnapshotName(name, this.#label)
    try {
      await this.#rbd(
        ['snap', 'create', '--no-progress', `${this.spec}@${name}`],
        `snap create ${name}`,
        signal,
      )
    } catch (e) {
      if ((e as SnapferryError).code === 'VOLUME_EXISTS') {
        throw new SnapferryError('SNAPSHOT_EXISTS', `snapshot '${name}' already exists on ${this.#label}`, {
          details: { volume: this.#label, snapshot: name },
        })
      }
      throw e
    }
  }

  async deleteSnapshot(name: string, signal?: AbortSignal): Promise<void> {
    assertOwnSnapshotName(name, this.#label)
    try {
      await this.#rbd(['snap', 'rm', '--no-progress', `${this.spec}@${name}`], `snap rm ${name}`, signal)
    } catch (e) {
      if ((e as SnapferryError).code !== 'VOLUME_NOT_FOUND') throw e
    }
  }

  async exportDiff(req: ExportRequest, sink: Writable): Promise<ExportResult> {
    const t0 = performance.now()
    assertOwnSnapshotName(req.toSnap, this.#label)
    if (req.fromSnap !== undefined) assertOwnSnapshotName(req.fromSnap, this.#label)
    // rbd reports a missing snapshot as a bare ENOENT and a backwards delta as EINVAL: say what is wrong.
    const ids = await this.#snapIds(req.signal)
    const have = new Set(ids.keys())
    for (const [role, name] of [
      ['end', req.toSnap],
      ['start', req.fromSnap],
    ] as const) {
      if (name !== undefined && !have.has(name)) {
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
    const exp = await exportDiffRecords(
      this.#o.connection,
      this.spec,
      req.fromSnap,
      req.toSnap,
      this.#o.wholeObject,
    )
    const c: Counters = { streamBytes: 0, dataBytes: 0, zeroBytes: 0, extents: 0 }
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
      exp.process.kill()
      await exp.process.done.catch((rbdErr: unknown) => {
        throw rbdErr
      })
      throw e
    }
    return { ...c, scannedBytes: 0, size: exp.header.size, durationMs: performance.now() - t0 }
  }

  async importDiff(req: ImportRequest, source: Readable | AsyncIterable<Uint8Array>): Promise<ImportResult> {
    try {
      return await this.#importDiff(req, source)
    } catch (e) {
      if (typeof (source as Readable).destroy === 'function') (source as Readable).destroy()
      throw e
    }
  }

  async #importDiff(req: ImportRequest, source: Readable | AsyncIterable<Uint8Array>): Promise<ImportResult> {
    const t0 = performance.now()
    assertOwnSnapshotName(req.toSnap, this.#label)
    const decoded = await decodeDiff(source)
    const h = decoded.header
    if ((h.fromSnap ?? undefined) !== req.fromSnap || (h.toSnap !== undefined && h.toSnap !== req.toSnap)) {
      throw new SnapferryError(
        'STATE_MISMATCH',
        `delta for ${this.#label} goes from '${h.fromSnap ?? '(nothing)'}' to '${h.toSnap ?? '(head)'}', expected '${req.fromSnap ?? '(nothing)'}' to '${req.toSnap}'`,
      )
    }
    const info = await this.describe(req.signal)
    const snaps = info.exists ? await this.listSnapshots(req.signal) : []
    if (snaps.some((s) => s.name === req.toSnap)) {
      throw new SnapferryError(
        'SNAPSHOT_EXISTS',
        `end snapshot '${req.toSnap}' already exists on ${this.#label}`,
        {
          hint: 'this delta was applied already; resume from that snapshot instead',
          details: { volume: this.#label, snapshot: req.toSnap },
        },
      )
    }
    const marker = info.exists ? await this.#marker(req.signal) : undefined
    if (req.fromSnap !== undefined) {
      if (!snaps.some((s) => s.name === req.fromSnap)) {
        throw new SnapferryError(
          'SNAPSHOT_NOT_FOUND',
          `start snapshot '${req.fromSnap}' does not exist on ${this.#label}`,
          {
            hint: 'run again so snapferry reconciles and, if needed, ships a new base',
            details: { volume: this.#label, snapshot: req.fromSnap },
          },
        )
      }
      if (!req.repair) {
        const head = await this.#checkHead(req.fromSnap, marker, snaps, info.size, req.signal)
        if (!head.matches) {
          throw new SnapferryError(
            'DEST_HEAD_DIVERGED',
            `destination ${this.#label} no longer equals snapshot '${req.fromSnap}': ${head.detail}`,
            {
              hint:
                head.reason === 'interrupted-apply'
                  ? '`snapferry run` repairs this by re-sending the changed extents'
                  : 'something wrote to the destination image; find out what, then run with --repair-destination',
              details: { volume: this.#label, snapshot: req.fromSnap, reason: head.reason },
            },
          )
        }
      }
    } else {
      await this.#prepareBase(info.exists, marker, req, h.size)
    }
    await this.#rbd(
      [
        'image-meta',
        'set',
        this.spec,
        MARKER_KEY,
        JSON.stringify({
          fromSnap: req.fromSnap ?? null,
          toSnap: req.toSnap,
          startedAt: new Date().toISOString(),
        }),
      ],
      'image-meta set',
      req.signal,
    )
    const c: Counters = { streamBytes: 0, dataBytes: 0, zeroBytes: 0, extents: 0 }
    // The stream's 't' names the snapshot import-diff creates: always the requested one.
    const chunks = countBytes(encodeDiffV1({ ...h, toSnap: req.toSnap }, countRecords(decoded.records, c)), c)
    const applyMode = await importDiffChunks(
      {
        conn: this.#o.connection,
        spec: this.spec,
        stageFile: stageFileFor(this.#o.stageDir ?? tmpdir(), this.spec, req.toSnap),
        stageLimit: this.#o.stageLimit,
        signal: req.signal,
      },
      chunks,
    )
    await this.#rbd(['image-meta', 'remove', this.spec, MARKER_KEY], 'image-meta remove', req.signal)
    return {
      ...c,
      streamBytes: decoded.bytesRead(),
      size: h.size,
      applyMode,
      durationMs: performance.now() - t0,
    }
  }

  /** A base goes onto a freshly created image of the diff's size: only allocated data travels. */
  async #prepareBase(
    exists: boolean,
    marker: Marker | undefined,
    req: ImportRequest,
    size: number,
  ): Promise<void> {
    if (exists) {
      const ours = marker?.fromSnap === null
      if (!ours && !req.overwrite) {
        throw new SnapferryError(
          'VOLUME_EXISTS',
          `destination ${this.#label} already exists and has no snapferry snapshot to continue from`,
          {
            hint: 'remove or rename it (`rbd mv`), or run with --overwrite-destination to replace it',
            details: { volume: this.#label },
          },
        )
      }
      const all = JSON.parse(
        (await this.#rbd(['snap', 'ls', '--format', 'json', this.spec], 'snap ls')).stdout || '[]',
      ) as { name: string }[]
      const foreign = all.filter((s) => !isOwnSnapshot(s.name))
      if (foreign.length > 0) {
        throw new SnapferryError(
          'VOLUME_EXISTS',
          `destination ${this.#label} has snapshots snapferry did not make (${foreign.map((s) => s.name).join(', ')}); refusing to replace it`,
          {
            hint: 'remove the image yourself if it may go',
          },
        )
      }
      for (const s of all) await this.deleteSnapshot(s.name)
      await this.#rbd(['rm', '--no-progress', this.spec], 'rm (replacing an unfinished base)')
    }
    await this.#rbd(['create', '--size', `${size}B`, this.spec], 'create')
  }

  async checkHead(snap: string, signal?: AbortSignal): Promise<HeadState> {
    const info = await this.describe(signal)
    if (!info.exists) return { matches: false, reason: 'missing', detail: `${this.spec} does not exist` }
    return this.#checkHead(
      snap,
      await this.#marker(signal),
      await this.listSnapshots(signal),
      info.size,
      signal,
    )
  }

  async #checkHead(
    snap: string,
    marker: Marker | undefined,
    snaps: readonly SnapshotInfo[],
    headSize: number,
    signal?: AbortSignal,
  ): Promise<HeadState> {
    if (marker)
      return {
        matches: false,
        reason: 'interrupted-apply',
        detail: `an apply of '${marker.toSnap}' started at ${marker.startedAt} did not finish`,
      }
    const s = snaps.find((x) => x.name === snap)
    if (!s) return { matches: false, reason: 'missing', detail: `snapshot '${snap}' does not exist` }
    const changed = await this.headChangesSince(snap, signal)
    if (changed.length === 0 && headSize === s.size) return { matches: true }
    const bytes = changed.reduce((n, e) => n + e.length, 0)
    return {
      matches: false,
      reason: 'modified',
      detail: `${bytes} bytes in ${changed.length} extents differ from '${snap}'${headSize !== s.size ? `, size ${headSize} instead of ${s.size}` : ''}`,
    }
  }

  async headChangesSince(snap: string, signal?: AbortSignal): Promise<Extent[]> {
    const r = await this.#rbd(
      ['diff', '--from-snap', snap, '--format', 'json', this.spec],
      `diff --from-snap ${snap}`,
      signal,
    )
    return (JSON.parse(r.stdout || '[]') as { offset: number; length: number }[]).map((e) => ({
      offset: e.offset,
      length: e.length,
    }))
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

  async estimateDiff(fromSnap: string | undefined, signal?: AbortSignal): Promise<number> {
    const r = await this.#rbd(
      ['diff', ...(fromSnap ? ['--from-snap', fromSnap] : []), '--format', 'json', this.spec],
      'diff',
      signal,
    )
    return (JSON.parse(r.stdout || '[]') as { length: number; exists: string | boolean }[])
      .filter((e) => e.exists === true || e.exists === 'true')
      .reduce((n, e) => n + e.length, 0)
  }

  async #marker(signal?: AbortSignal): Promise<Marker | undefined> {
    try {
      return JSON.parse(
        (await this.#rbd(['image-meta', 'get', this.spec, MARKER_KEY], 'image-meta get', signal)).stdout,
      ) as Marker
    } catch (e) {
      if ((e as SnapferryError).code === 'VOLUME_NOT_FOUND') return undefined
      throw e
    }
  }
}

interface Marker {
  readonly fromSnap: string | null
  readonly toSnap: string
  readonly startedAt: string
}

/** Counts what passes; a large extent arriving as several consecutive records counts once. */
async function* countRecords(records: AsyncIterable<DataRecord>, c: Counters): AsyncGenerator<DataRecord> {
  let prevEnd = -1
  let prevKind = ''
  for await (const r of records) {
    if (r.offset !== prevEnd || r.kind !== prevKind) c.extents++
    prevEnd = r.offset + recordLength(r)
    prevKind = r.kind
    if (r.kind === 'write') c.dataBytes += recordLength(r)
    else c.zeroBytes += r.length
    yield r
  }
}

async function* countBytes(chunks: AsyncIterable<Buffer>, c: Counters): AsyncGenerator<Buffer> {
  for await (const b of chunks) {
    c.streamBytes += b.length
    yield b
  }
}
