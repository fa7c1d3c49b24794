/**
 * A snapshot record of the file driver: the xxh128 of every block of the volume as it was read (source)
 * or written (destination). Layout: a 4 KiB header ("SFREC1\n" + JSON, space padded), then 16 bytes per
 * block. Written to `<name>.rec.partial` and renamed when complete, so a crash never leaves a record
 * that looks complete. See docs/FILE-DRIVER.md.
 */
import { constants } from 'node:fs'
import { type FileHandle, open, rename } from 'node:fs/promises'
import { SnapferryError } from '../../errors/snapferry-error.js'
import { HASH_BYTES } from './block-hasher.js'

const MAGIC = 'SFREC1\n'
export const RECORD_HEADER_BYTES = 4096

/** Proof of what the head looked like when the record was completed (destination quick check). */
export interface HeadStamp {
  readonly size: number
  readonly mtimeNs: string
  readonly ino: number
  readonly dev: number
}

export interface RecordHeader {
  readonly name: string
  readonly blockSize: number
  readonly size: number
  readonly blocks: number
  readonly hash: 'xxh128'
  readonly createdAt: string
  readonly completedAt: string
  /** Set on destinations: the head right after the record was written. */
  readonly head?: HeadStamp | undefined
}

export function blockCount(size: number, blockSize: number): number {
  return Math.ceil(size / blockSize)
}

export class RecordReader {
  readonly header: RecordHeader
  readonly #fh: FileHandle
  private constructor(fh: FileHandle, header: RecordHeader) {
    this.#fh = fh
    this.header = header
  }

  static async open(file: string): Promise<RecordReader> {
    let fh: FileHandle
    try {
      fh = await open(file, 'r')
    } catch (e) {
      throw new SnapferryError('SNAPSHOT_NOT_FOUND', `snapshot record ${file} does not exist`, {
        cause: e,
        details: { file },
      })
    }
    try {
      const buf = Buffer.alloc(RECORD_HEADER_BYTES)
      const { bytesRead } = await fh.read(buf, 0, RECORD_HEADER_BYTES, 0)
      const text = buf.subarray(0, bytesRead).toString('utf8')
      if (!text.startsWith(MAGIC)) throw new Error('bad magic')
      const header = JSON.parse(text.slice(MAGIC.length).trim()) as RecordHeader
      const st = await fh.stat()
      if (st.size !== RECORD_HEADER_BYTES + header.blocks * HASH_BYTES)
        throw new Error('size does not match the header')
      return new RecordReader(fh, header)
    } catch (e) {
      await fh.close()
      throw new SnapferryError(
        'SNAPSHOT_INCOMPLETE',
        `snapshot record ${file} is unreadable: ${(e as Error).message}`,
        {
          cause: e,
          hint: 'delete the snapshot (snapferry abort --clean-snapshots) and let the next run ship a fresh base',
          details: { file },
        },
      )
    }
  }

  /** Hashes of blocks [first, first+count) clipped to the record; fewer when past the end. */
  async read(first: number, count: number): Promise<Buffer> {
    const n = Math.max(0, Math.min(count, this.header.blocks - first))
    const out = Buffer.alloc(n * HASH_BYTES)
    if (n > 0) await this.#fh.read(out, 0, out.length, RECORD_HEADER_BYTES + first * HASH_BYTES)
    return out
  }

  async close(): Promise<void> {
    await this.#fh.close()
  }
}

/** Writes hashes sequentially; commit() writes the header, syncs and renames into place. */
export class RecordWriter {
  readonly #fh: FileHandle
  readonly #partial: string
  readonly #final: string
  readonly #base: Omit<RecordHeader, 'completedAt' | 'head'>
  #written = 0

  private constructor(
    fh: FileHandle,
    partial: string,
    final: string,
    base: Omit<RecordHeader, 'completedAt' | 'head'>,
  ) {
    this.#fh = fh
    this.#partial = partial
    this.#final = final
    this.#base = base
  }

  static async create(file: string, name: string, blockSize: number, size: number): Promise<RecordWriter> {
    const partial = `${file}.partial`
    const fh = await open(partial, constants.O_CREAT | constants.O_TRUNC | constants.O_WRONLY, 0o600)
    const base = {
      name,
      blockSize,
      size,
      blocks: blockCount(size, blockSize),
      hash: 'xxh128' as const,
      createdAt: new Date().toISOString(),
    }
    return new RecordWriter(fh, partial, file, base)
  }

  /** Blocks written so far (the index of the next block). */
  get next(): number {
    return this.#written
  }

  async append(hashes: Buffer): Promise<void> {
    if (hashes.length === 0) return
    await this.#fh.write(hashes, 0, hashes.length, RECORD_HEADER_BYTES + this.#written * HASH_BYTES)
    this.#written += hashes.length / HASH_BYTES
  }

  async commit(head?: HeadStamp): Promise<RecordHeader> {
    if (this.#written !== this.#base.blocks) {
      throw new SnapferryError(
        'INTERNAL',
        `record ${this.#final}: wrote ${this.#written} of ${this.#base.blocks} block hashes`,
      )
    }
    const header: RecordHeader = {
      ...this.#base,
      completedAt: new Date().toISOString(),
      ...(head ? { head } : {}),
    }
    const text = `${MAGIC}${JSON.stringify(header)}`
    if (Buffer.byteLength(text) >= RECORD_HEADER_BYTES)
      throw new SnapferryError('INTERNAL', 'record header too large')
    const hb = Buffer.alloc(RECORD_HEADER_BYTES, 0x20)
    hb.write(text, 0, 'utf8')
    hb[RECORD_HEADER_BYTES - 1] = 0x0a
    await this.#fh.write(hb, 0, hb.length, 0)
    await this.#fh.sync()
    await this.#fh.close()
    await rename(this.#partial, this.#final)
    return header
  }

  async discard(): Promise<void> {
    await this.#fh.close().catch(() => {})
    const { rm } = await import('node:fs/promises')
    await rm(this.#partial, { force: true })
  }
}
