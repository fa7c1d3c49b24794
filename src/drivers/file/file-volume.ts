/** Facts about a raw image file or block device: kind, logical size, the stamp that proves it unchanged. */
import type { BigIntStats } from 'node:fs'
import { open, readFile, stat } from 'node:fs/promises'
import path from 'node:path'
import { SnapferryError } from '../../errors/snapferry-error.js'
import type { VolumeKind } from '../volume-driver.js'
import type { HeadStamp } from './block-record.js'

export interface VolumeStat {
  readonly exists: boolean
  readonly kind: Extract<VolumeKind, 'file' | 'block-device'>
  readonly size: number
  readonly stamp: HeadStamp | undefined
}

export async function statVolume(file: string): Promise<VolumeStat> {
  let st: BigIntStats
  try {
    st = await stat(file, { bigint: true })
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT')
      return { exists: false, kind: 'file', size: 0, stamp: undefined }
    throw ioError(file, 'stat', e)
  }
  if (st.isBlockDevice()) {
    const size = await blockDeviceSize(file, st)
    return { exists: true, kind: 'block-device', size, stamp: undefined }
  }
  if (!st.isFile()) {
    throw new SnapferryError('VOLUME_NOT_FOUND', `${file} is neither a regular file nor a block device`, {
      hint: 'point the volume path at a raw image file or a block device',
      details: { path: file },
    })
  }
  return { exists: true, kind: 'file', size: Number(st.size), stamp: stampOf(st) }
}

export function stampOf(st: BigIntStats): HeadStamp {
  return { size: Number(st.size), mtimeNs: st.mtimeNs.toString(), ino: Number(st.ino), dev: Number(st.dev) }
}

export function sameStamp(a: HeadStamp | undefined, b: HeadStamp | undefined): boolean {
  return !!a && !!b && a.size === b.size && a.mtimeNs === b.mtimeNs && a.ino === b.ino && a.dev === b.dev
}

async function blockDeviceSize(file: string, st: BigIntStats): Promise<number> {
  const major = Number(st.rdev >> 8n) & 0xfff
  const minor = Number((st.rdev & 0xffn) | ((st.rdev >> 12n) & 0xfff00n))
  try {
    const sectors = await readFile(`/sys/dev/block/${major}:${minor}/size`, 'utf8')
    return Number(sectors.trim()) * 512
  } catch (e) {
    throw ioError(file, 'read the block device size of', e)
  }
}

/** Where snapshot records live unless the pipeline says otherwise. */
export function defaultStateDir(volumePath: string, kind: VolumeStat['kind']): string {
  if (kind === 'block-device') return path.join('/var/lib/snapferry/devices', volumePath.replace(/\//g, '_'))
  return `${volumePath}.snapferry`
}

export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r')
  try {
    await fh.sync()
  } finally {
    await fh.close()
  }
}

/** Map an fs error to a SnapferryError that names the volume; ENOSPC gets its own code and fix. */
export function ioError(file: string, action: string, e: unknown): SnapferryError {
  const code = (e as NodeJS.ErrnoException).code
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new SnapferryError('VOLUME_NO_SPACE', `no space left to ${action} ${file}`, {
      cause: e,
      hint: 'free space on the destination filesystem (the copy needs the full logical size when the source is not sparse), then run again: completed rounds are kept',
      details: { path: file },
    })
  }
  if (code === 'ENOENT') {
    return new SnapferryError('VOLUME_NOT_FOUND', `cannot ${action} ${file}: no such file`, {
      cause: e,
      details: { path: file },
    })
  }
  return new SnapferryError('VOLUME_IO', `cannot ${action} ${file}: ${(e as Error).message}`, {
    cause: e,
    details: { path: file, errno: code },
    transient: code === 'EIO' || code === 'EAGAIN',
  })
}
