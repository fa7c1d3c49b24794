/**
 * FileDriver: raw image files and block devices, the embedded default that needs no Ceph.
 * A snapshot is a record of per-block hashes of what one read saw (see docs/FILE-DRIVER.md).
 */
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { open, rm } from 'node:fs/promises'
import type { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { SnapferryError } from '../../errors/snapferry-error.js'
import { destroyingSourceOnError } from '../import-preconditions.js'
import { assertOwnSnapshotName, byRound } from '../snapshot-names.js'
import type {
  ChecksumResult,
  DriverCapabilities,
  ExportRequest,
  ExportResult,
  Extent,
  HeadState,
  ImportRequest,
  ImportResult,
  RecordDigest,
  SnapshotInfo,
  VolumeDriver,
  VolumeInfo,
} from '../volume-driver.js'
import { blockHasher } from './block-hasher.js'
import { RecordWriter } from './block-record.js'
import { checkFileHead, type FileImportContext, importIntoFile } from './file-import.js'
import { FileSnapshotStore } from './file-snapshot-store.js'
import { ioError, statVolume } from './file-volume.js'
import { headChanges } from './head-compare.js'
import { scanExport } from './scan-export.js'

export interface FileDriverOptions {
  readonly path: string
  readonly blockSize: number
  readonly stateDir?: string | undefined
  /** How messages name this volume ("volume root (source)"). */
  readonly label?: string | undefined
}

export class FileDriver implements VolumeDriver {
  readonly capabilities: DriverCapabilities = Object.freeze({
    frozenSnapshots: false,
    diffScansVolume: true,
    repeatableExport: false,
    headDiff: true,
    rollback: false,
    resize: true,
    exportInclude: true,
  })
  readonly #opts: FileDriverOptions
  readonly #store: FileSnapshotStore
  readonly #ctx: FileImportContext

  constructor(opts: FileDriverOptions) {
    this.#opts = Object.freeze({ ...opts })
    this.#store = new FileSnapshotStore(opts.path, opts.stateDir, opts.label ?? opts.path)
    this.#ctx = { opts: this.#opts, store: this.#store, label: opts.label ?? opts.path }
  }

  get #label(): string {
    return this.#opts.label ?? this.#opts.path
  }

  async describe(): Promise<VolumeInfo> {
    const st = await statVolume(this.#opts.path)
    return { exists: st.exists, kind: st.kind, size: st.size, location: this.#opts.path }
  }

  listSnapshots(): Promise<SnapshotInfo[]> {
    return this.#store.list()
  }

  createSnapshot(name: string): Promise<void> {
    return this.#store.reserve(name)
  }

  deleteSnapshot(name: string): Promise<void> {
    return this.#store.remove(name)
  }

  async exportDiff(req: ExportRequest, sink: Writable): Promise<ExportResult> {
    const t0 = performance.now()
    assertOwnSnapshotName(req.toSnap, this.#label)
    const snaps = await this.listSnapshots()
    const to = snaps.find((s) => s.name === req.toSnap)
    if (!to) throw this.#store.missing(req.toSnap, 'end')
    if (to.complete) {
      throw new SnapferryError(
        'SNAPSHOT_EXISTS',
        `snapshot '${req.toSnap}' on ${this.#label} was already exported`,
        {
          hint: 'the file driver records a snapshot while exporting it, so it cannot export it twice: create a new snapshot',
          details: { volume: this.#label, snapshot: req.toSnap },
        },
      )
    }
    const from =
      req.fromSnap === undefined
        ? undefined
        : await this.#store.openRecord(req.fromSnap, 'start', this.#opts.blockSize)
    const st = await statVolume(this.#opts.path)
    if (!st.exists) {
      await from?.close()
      throw new SnapferryError('VOLUME_NOT_FOUND', `source volume ${this.#label} does not exist`, {
        hint: 'check the path in the pipeline',
        details: { path: this.#opts.path },
      })
    }
    const fh = await open(this.#opts.path, 'r').catch((e) => {
      throw ioError(this.#opts.path, 'open', e)
    })
    const writer = await RecordWriter.create(
      await this.#store.file(req.toSnap, '.rec'),
      req.toSnap,
      this.#opts.blockSize,
      st.size,
    )
    const counters = { streamBytes: 0, dataBytes: 0, zeroBytes: 0, extents: 0, scannedBytes: 0 }
    try {
      const header = { fromSnap: req.fromSnap, toSnap: req.toSnap, size: st.size }
      const hasher = await blockHasher()
      const input = {
        fh,
        path: this.#opts.path,
        size: st.size,
        blockSize: this.#opts.blockSize,
        header,
        hasher,
        from,
        writer,
        include: req.include ?? [],
        signal: req.signal,
      }
      await pipeline(scanExport(input, counters), sink, req.signal ? { signal: req.signal } : {})
      await writer.commit()
      await rm(await this.#store.file(req.toSnap, '.pending'), { force: true })
    } catch (e) {
      await writer.discard()
      throw e
    } finally {
      await fh.close()
      await from?.close()
    }
    return { ...counters, size: st.size, durationMs: performance.now() - t0 }
  }

  importDiff(req: ImportRequest, source: Readable | AsyncIterable<Uint8Array>): Promise<ImportResult> {
    return destroyingSourceOnError(source, () => importIntoFile(this.#ctx, req, source))
  }

  async checkHead(snap: string, signal?: AbortSignal): Promise<HeadState> {
    const rec = await this.#store.openRecord(snap, 'start', this.#opts.blockSize).catch(() => undefined)
    if (!rec)
      return { matches: false, reason: 'missing', detail: `snapshot '${snap}' has no complete record` }
    try {
      return await checkFileHead(this.#ctx, rec, await this.#store.marker(), signal)
    } finally {
      await rec.close()
    }
  }

  async recordDigest(snapshot: string, signal?: AbortSignal): Promise<RecordDigest> {
    const rec = await this.#store.openRecord(snapshot, 'end', this.#opts.blockSize)
    try {
      const h = createHash('sha256')
      const per = 65536
      for (let b = 0; b < rec.header.blocks; b += per) {
        signal?.throwIfAborted()
        h.update(await rec.read(b, per))
      }
      return { blockSize: rec.header.blockSize, size: rec.header.size, digest: h.digest('hex') }
    } finally {
      await rec.close()
    }
  }

  async headChangesSince(snap: string, signal?: AbortSignal): Promise<Extent[]> {
    const rec = await this.#store.openRecord(snap, 'start', this.#opts.blockSize)
    try {
      const st = await statVolume(this.#opts.path)
      const size = st.kind === 'block-device' ? Math.min(st.size, rec.header.size) : st.size
      return await headChanges(this.#opts.path, size, rec, signal)
    } finally {
      await rec.close()
    }
  }

  async checksum(at: 'head' | { readonly snapshot: string }, signal?: AbortSignal): Promise<ChecksumResult> {
    if (at !== 'head') {
      throw new SnapferryError(
        'SNAPSHOT_INCOMPLETE',
        `the file driver keeps no data of past snapshots, only of the head (${this.#label})`,
        {
          hint: 'verify the head once the workload is stopped',
        },
      )
    }
    const st = await statVolume(this.#opts.path)
    const size = await this.#logicalSize(st)
    const hash = createHash('sha256')
    if (size > 0) {
      const stream = createReadStream(this.#opts.path, {
        start: 0,
        end: size - 1,
        highWaterMark: 1 << 20,
        ...(signal ? { signal } : {}),
      })
      await pipeline(stream, hash).catch((e) => {
        throw ioError(this.#opts.path, 'read', e)
      })
    }
    return { algorithm: 'sha256', digest: hash.digest('hex'), size }
  }
  /** A block device holds the volume in its first bytes: its size is the newest snapshot's, not the device's. */
  async #logicalSize(st: Awaited<ReturnType<typeof statVolume>>): Promise<number> {
    if (st.kind !== 'block-device') return st.size
    const newest = (await this.#store.list())
      .filter((s) => s.complete)
      .sort(byRound)
      .at(-1)
    return newest ? Math.min(newest.size, st.size) : st.size
  }
}
