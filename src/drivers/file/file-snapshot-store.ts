/**
 * Where the file driver keeps its snapshots: `<name>.rec` records, `<name>.pending` reservations and
 * the `applying.json` marker of an unfinished apply, in the volume's state directory.
 */
import { mkdir, open, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { SnapferryError } from '../../errors/snapferry-error.js'
import { assertOwnSnapshotName, isOwnSnapshot } from '../snapshot-names.js'
import type { HeadState, SnapshotInfo } from '../volume-driver.js'
import { RecordReader } from './block-record.js'
import { defaultStateDir, fsyncDir, ioError, statVolume } from './file-volume.js'

const APPLYING = 'applying.json'

export interface ApplyingMarker {
  readonly fromSnap: string | null
  readonly toSnap: string
  readonly startedAt: string
}

export class FileSnapshotStore {
  readonly #volumePath: string
  readonly #configured: string | undefined
  readonly #label: string
  #dir: string | undefined

  constructor(volumePath: string, stateDir: string | undefined, label: string) {
    this.#volumePath = volumePath
    this.#configured = stateDir
    this.#label = label
  }

  async dir(): Promise<string> {
    if (this.#dir) return this.#dir
    const st = await statVolume(this.#volumePath)
    this.#dir = this.#configured ?? defaultStateDir(this.#volumePath, st.kind)
    return this.#dir
  }

  async file(name: string, ext: string): Promise<string> {
    return path.join(await this.dir(), `${name}${ext}`)
  }

  async list(): Promise<SnapshotInfo[]> {
    const dir = await this.dir()
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

  /** Reserve a name: the record is written by the export that fills it in. */
  async reserve(name: string): Promise<void> {
    assertOwnSnapshotName(name, this.#label)
    if ((await this.list()).some((s) => s.name === name)) {
      throw new SnapferryError('SNAPSHOT_EXISTS', `snapshot '${name}' already exists on ${this.#label}`, {
        details: { volume: this.#label, snapshot: name },
      })
    }
    const dir = await this.dir()
    await mkdir(dir, { recursive: true })
    await writeFile(
      path.join(dir, `${name}.pending`),
      JSON.stringify({ createdAt: new Date().toISOString() }),
    )
  }

  async remove(name: string): Promise<void> {
    assertOwnSnapshotName(name, this.#label)
    for (const ext of ['.rec', '.rec.partial', '.pending'])
      await rm(await this.file(name, ext), { force: true })
  }

  /** The complete record of `snap`, recorded with `blockSize`. */
  async openRecord(snap: string, role: 'start' | 'end', blockSize: number): Promise<RecordReader> {
    assertOwnSnapshotName(snap, this.#label)
    let rec: RecordReader
    try {
      rec = await RecordReader.open(await this.file(snap, '.rec'))
    } catch (e) {
      if ((e as SnapferryError).code === 'SNAPSHOT_NOT_FOUND') throw this.missing(snap, role)
      throw e
    }
    if (rec.header.blockSize !== blockSize) {
      await rec.close()
      throw new SnapferryError(
        'BLOCK_SIZE_MISMATCH',
        `snapshot '${snap}' of ${this.#label} was recorded with ${rec.header.blockSize}-byte blocks, the pipeline says ${blockSize}`,
        {
          hint: `set blockSize: ${rec.header.blockSize} for this volume, or start over with abort --clean-snapshots`,
        },
      )
    }
    return rec
  }

  missing(snap: string, role: 'start' | 'end'): SnapferryError {
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

  diverged(snap: string, head: Exclude<HeadState, { matches: true }>): SnapferryError {
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

  async marker(): Promise<ApplyingMarker | undefined> {
    try {
      return JSON.parse(await readFile(path.join(await this.dir(), APPLYING), 'utf8')) as ApplyingMarker
    } catch {
      return undefined
    }
  }

  /** Written and synced before the first write of an apply. */
  async setMarker(m: ApplyingMarker): Promise<void> {
    const dir = await this.dir()
    await mkdir(dir, { recursive: true })
    const fh = await open(path.join(dir, APPLYING), 'w')
    try {
      await fh.writeFile(JSON.stringify(m))
      await fh.sync()
    } finally {
      await fh.close()
    }
    await fsyncDir(dir)
  }

  async clearMarker(): Promise<void> {
    const dir = await this.dir()
    await rm(path.join(dir, APPLYING), { force: true })
    await fsyncDir(dir)
  }
}
