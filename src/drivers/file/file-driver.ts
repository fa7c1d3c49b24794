/**
 * FileDriver: raw image files and block devices, the embedded default that needs no Ceph.
 * A snapshot is a record of per-block hashes of what one read saw (see docs/FILE-DRIVER.md).
 */
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { mkdir, open, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import type { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { decodeDiff } from '../../delta-format/diff-decoder.js'
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
import { applyDiff } from './apply-diff.js'
import { blockHasher } from './block-hasher.js'
import { RecordReader, RecordWriter } from './block-record.js'
import { defaultStateDir, fsyncDir, ioError, sameStamp, stampOf, statVolume } from './file-volume.js'
import { headChanges } from './head-compare.js'
import { scanExport } from './scan-export.js'

export interface FileDriverOptions {
  readonly path: string
  readonly blockSize: number
  readonly stateDir?: string | undefined
  /** How messages name this volume ("volume root (source)"). */
  readonly label?: string | undefined
}

const APPLYING = 'applying.json'

interface ApplyingMarker {
  readonly fromSnap: string | null
  readonly toSnap: string
  readonly startedAt: string
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
  #stateDir: string | undefined

  constructor(opts: FileDriverOptions) {
    this.#opts = Object.freeze({ ...opts })
  }

  get #label(): string {
    return this.#opts.label ?? this.#opts.path
  }

  async #dir(): Promise<string> {
    if (this.#stateDir) return this.#stateDir
    const st = await statVolume(this.#opts.path)
    this.#stateDir = this.#opts.stateDir ?? defaultStateDir(this.#opts.path, st.kind)
    return this.#stateDir
  }

  async #file(name: string, ext: string): Promise<string> {
    return path.join(await this.#dir(), `${name}${ext}`)
  }

  async describe(): Promise<VolumeInfo> {
    const st = await statVolume(this.#opts.path)
    return { exists: st.exists, kind: st.kind, size: st.size, location: this.#opts.path }
  }

  async listSnapshots(): Promise<SnapshotInfo[]> {
    const dir = await this.#dir()
    let names: string[]
    try {
      names = await readdir(dir)
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return []
      throw ioError(dir, 'list', e)
    }
    const out: SnapshotInfo[] = []
    for (const f of names.sort()) {
      if (f.endsWith('.rec') && isOwnSnapshot(f)) {
        const r = await RecordReader.open(path.join(dir, f))
        await r.close()
        out.push({ name: r.header.name, complete: true, size: r.header.size, createdAt: r.header.createdAt })
      } else if (f.endsWith('.pending') && isOwnSnapshot(f)) {
        const info = JSON.parse(await readFile(path.join(dir, f), 'utf8')) as { createdAt: string }
        out.push({
          name: f.slice(0, -'.pending'.length),
          complete: false,
          size: 0,
          createdAt: info.createdAt,
        })
      }
    }
    return out
  }

  async createSnapshot(name: string): Promise<void> {
    assertOwnSnapshotName(name, this.#label)
    const snaps = await this.listSnapshots()
    if (snaps.some((s) => s.name === name)) {
      throw new SnapferryError('SNAPSHOT_EXISTS', `snapshot '${name}' already exists on ${this.#label}`, {
        details: { volume: this.#label, snapshot: name },
      })
    }
    const dir = await this.#dir()
    await mkdir(dir, { recursive: true })
    await writeFile(
      path.join(dir, `${name}.pending`),
      JSON.stringify({ createdAt: new Date().toISOString() }),
    )
  }

  async deleteSnapshot(name: string): Promise<void> {
    assertOwnSnapshotName(name, this.#label)
    for (const ext of ['.rec', '.rec.partial', '.pending'])
      await rm(await this.#file(name, ext), { force: true })
  }

  async exportDiff(req: ExportRequest, sink: Writable): Promise<ExportResult> {
    const t0 = performance.now()
    assertOwnSnapshotName(req.toSnap, this.#label)
    const snaps = await this.listSnapshots()
    const to = snaps.find((s) => s.name === req.toSnap)
    if (!to) throw this.#missing(req.toSnap, 'end')
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
    const from = req.fromSnap === undefined ? undefined : await this.#openRecord(req.fromSnap, 'start')
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
      await this.#file(req.toSnap, '.rec'),
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
      await rm(await this.#file(req.toSnap, '.pending'), { force: true })
    } catch (e) {
      await writer.discard()
      throw e
    } finally {
      await fh.close()
      await from?.close()
    }
    return { ...counters, size: st.size, durationMs: performance.now() - t0 }
  }

  async importDiff(req: ImportRequest, source: Readable | AsyncIterable<Uint8Array>): Promise<ImportResult> {
    try {
      return await this.#importDiff(req, source)
    } catch (e) {
      // Never leave the producer blocked on a stream nobody reads.
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
        { hint: 'this stream belongs to another round or volume', details: { volume: this.#label } },
      )
    }
    const snaps = await this.listSnapshots()
    if (snaps.some((s) => s.name === req.toSnap && s.complete)) {
      throw new SnapferryError(
        'SNAPSHOT_EXISTS',
        `end snapshot '${req.toSnap}' already exists on ${this.#label}`,
        {
          hint: 'this delta was applied already; resume from that snapshot instead',
          details: { volume: this.#label, snapshot: req.toSnap },
        },
      )
    }
    const dir = await this.#dir()
    const marker = await this.#marker()
    const st = await statVolume(this.#opts.path)
    let from: RecordReader | undefined
    if (req.fromSnap !== undefined) {
      from = await this.#openRecord(req.fromSnap, 'start')
      if (!req.repair) {
        const head = await this.#checkHeadWith(from, marker)
        if (!head.matches) {
          await from.close()
          throw this.#diverged(req.fromSnap, head)
        }
      }
    } else if (st.exists && st.size > 0 && !req.overwrite && !(marker && marker.fromSnap === null)) {
      throw new SnapferryError(
        'VOLUME_EXISTS',
        `destination ${this.#label} already holds data and has no snapferry snapshot to continue from`,
        {
          hint: 'move it away, or set `overwrite: true` on the destination if its contents may be replaced',
          details: { volume: this.#label, path: this.#opts.path },
        },
      )
    }
    if (st.kind === 'block-device' && st.size < h.size) {
      await from?.close()
      throw new SnapferryError(
        'VOLUME_TOO_SMALL',
        `block device ${this.#label} has ${st.size} bytes, the volume needs ${h.size}`,
        {
          hint: 'give the destination a device at least as large as the source',
          details: { volume: this.#label, deviceSize: st.size, needed: h.size },
        },
      )
    }
    await mkdir(dir, { recursive: true })
    await this.#writeMarker({
      fromSnap: req.fromSnap ?? null,
      toSnap: req.toSnap,
      startedAt: new Date().toISOString(),
    })
    const fresh = req.fromSnap === undefined && st.kind === 'file'
    const fh = await open(this.#opts.path, fresh ? 'w+' : 'r+').catch((e) => {
      throw ioError(this.#opts.path, 'open', e)
    })
    const writer = await RecordWriter.create(
      await this.#file(req.toSnap, '.rec'),
      req.toSnap,
      this.#opts.blockSize,
      h.size,
    )
    const counters = { dataBytes: 0, zeroBytes: 0, extents: 0 }
    let streamBytes = 0
    try {
      const hasher = await blockHasher()
      const records = (async function* () {
        for await (const r of decoded.records) yield r
      })()
      await applyDiff(
        {
          fh,
          path: this.#opts.path,
          kind: st.kind,
          blockSize: this.#opts.blockSize,
          oldSize: fresh ? 0 : st.size,
          header: h,
          records,
          hasher,
          from,
          writer,
          zeroFillGaps: req.fromSnap === undefined && st.kind === 'block-device',
          sparse: fresh,
          signal: req.signal,
        },
        counters,
      )
      streamBytes = decoded.bytesRead()
      await fh.datasync().catch((e) => {
        throw ioError(this.#opts.path, 'flush', e)
      })
      const stamp = st.kind === 'file' ? stampOf(await fh.stat({ bigint: true })) : undefined
      await writer.commit(stamp)
      await rm(path.join(dir, APPLYING), { force: true })
      await fsyncDir(dir)
    } catch (e) {
      await writer.discard()
      throw e
    } finally {
      await fh.close()
      await from?.close()
    }
    return { ...counters, streamBytes, size: h.size, durationMs: performance.now() - t0 }
  }

  async checkHead(snap: string, signal?: AbortSignal): Promise<HeadState> {
    const rec = await this.#openRecord(snap, 'start').catch(() => undefined)
    if (!rec)
      return { matches: false, reason: 'missing', detail: `snapshot '${snap}' has no complete record` }
    try {
      return await this.#checkHeadWith(rec, await this.#marker(), signal)
    } finally {
      await rec.close()
    }
  }

  async #checkHeadWith(
    rec: RecordReader,
    marker: ApplyingMarker | undefined,
    signal?: AbortSignal,
  ): Promise<HeadState> {
    if (marker) {
      return {
        matches: false,
        reason: 'interrupted-apply',
        detail: `an apply of '${marker.toSnap}' started at ${marker.startedAt} did not finish`,
      }
    }
    const st = await statVolume(this.#opts.path)
    if (!st.exists) return { matches: false, reason: 'missing', detail: `${this.#opts.path} does not exist` }
    // Quick proof for regular files: nothing has touched the file since the record was completed.
    if (st.kind === 'file' && sameStamp(st.stamp, rec.header.head)) return { matches: true }
    const changed = await headChanges(this.#opts.path, st.size, rec, signal)
    if (changed.length === 0 && st.size === rec.header.size) return { matches: true }
    const bytes = changed.reduce((n, e) => n + e.length, 0)
    return {
      matches: false,
      reason: 'modified',
      detail: `${bytes} bytes in ${changed.length} extents differ from '${rec.header.name}'${st.size !== rec.header.size ? `, size ${st.size} instead of ${rec.header.size}` : ''}`,
    }
  }

  async headChangesSince(snap: string, signal?: AbortSignal): Promise<Extent[]> {
    const rec = await this.#openRecord(snap, 'start')
    try {
      const st = await statVolume(this.#opts.path)
      return await headChanges(this.#opts.path, st.size, rec, signal)
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
    const hash = createHash('sha256')
    if (st.size > 0) {
      const stream = createReadStream(this.#opts.path, {
        start: 0,
        end: st.size - 1,
        highWaterMark: 1 << 20,
        ...(signal ? { signal } : {}),
      })
      await pipeline(stream, hash).catch((e) => {
        throw ioError(this.#opts.path, 'read', e)
      })
    }
    return { algorithm: 'sha256', digest: hash.digest('hex'), size: st.size }
  }

  async #openRecord(snap: string, role: 'start' | 'end'): Promise<RecordReader> {
    assertOwnSnapshotName(snap, this.#label)
    const file = await this.#file(snap, '.rec')
    let rec: RecordReader
    try {
      rec = await RecordReader.open(file)
    } catch (e) {
      if ((e as SnapferryError).code === 'SNAPSHOT_NOT_FOUND') throw this.#missing(snap, role)
      throw e
    }
    if (rec.header.blockSize !== this.#opts.blockSize) {
      await rec.close()
      throw new SnapferryError(
        'BLOCK_SIZE_MISMATCH',
        `snapshot '${snap}' of ${this.#label} was recorded with ${rec.header.blockSize}-byte blocks, the pipeline says ${this.#opts.blockSize}`,
        {
          hint: `set blockSize: ${rec.header.blockSize} for this volume, or start over with abort --clean-snapshots`,
        },
      )
    }
    return rec
  }

  #missing(snap: string, role: 'start' | 'end'): SnapferryError {
    return new SnapferryError(
      'SNAPSHOT_NOT_FOUND',
      `${role} snapshot '${snap}' does not exist on ${this.#label}`,
      {
        hint:
          role === 'start'
            ? 'the destination lost the snapshot this delta builds on: run again so snapferry reconciles and, if needed, ships a new base'
            : 'create the snapshot before exporting it',
        details: { volume: this.#label, snapshot: snap },
      },
    )
  }

  #diverged(snap: string, head: Exclude<HeadState, { matches: true }>): SnapferryError {
    return new SnapferryError(
      'DEST_HEAD_DIVERGED',
      `destination ${this.#label} no longer equals snapshot '${snap}': ${head.detail}`,
      {
        hint:
          head.reason === 'interrupted-apply'
            ? 'an earlier apply was interrupted; `snapferry run` repairs this automatically by re-sending the changed extents'
            : 'something wrote to the destination; find out what, then run again with --repair-destination to overwrite the changes',
        details: { volume: this.#label, snapshot: snap, reason: head.reason },
      },
    )
  }

  async #marker(): Promise<ApplyingMarker | undefined> {
    try {
      return JSON.parse(await readFile(path.join(await this.#dir(), APPLYING), 'utf8')) as ApplyingMarker
    } catch {
      return undefined
    }
  }

  async #writeMarker(m: ApplyingMarker): Promise<void> {
    const dir = await this.#dir()
    const fh = await open(path.join(dir, APPLYING), 'w')
    try {
      await fh.writeFile(JSON.stringify(m))
      await fh.sync()
    } finally {
      await fh.close()
    }
    await fsyncDir(dir)
  }
}
