/** One run per pipeline: an exclusive lock file naming the holder; a dead holder's lock is taken over. */
import { open, readFile, rm } from 'node:fs/promises'
import { hostname } from 'node:os'
import path from 'node:path'
import { SnapferryError } from '../errors/snapferry-error.js'

export interface LockInfo {
  readonly pid: number
  readonly host: string
  readonly startedAt: string
  readonly command: string
}

export const LOCK_FILE = 'lock'

export async function readLock(stateDir: string): Promise<LockInfo | undefined> {
  try {
    return JSON.parse(await readFile(path.join(stateDir, LOCK_FILE), 'utf8')) as LockInfo
  } catch {
    return undefined
  }
}

/** Whether the lock's holder still runs (only knowable on the same host). */
export function holderAlive(info: LockInfo): boolean {
  if (info.host !== hostname()) return true
  try {
    process.kill(info.pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'
  }
}

export async function acquireLock(
  stateDir: string,
  pipeline: string,
  command: string,
): Promise<() => Promise<void>> {
  const file = path.join(stateDir, LOCK_FILE)
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fh = await open(file, 'wx')
      const info: LockInfo = {
        pid: process.pid,
        host: hostname(),
        startedAt: new Date().toISOString(),
        command,
      }
      await fh.writeFile(JSON.stringify(info))
      await fh.sync()
      await fh.close()
      return async () => {
        const now = await readLock(stateDir)
        if (now?.pid === process.pid && now.host === info.host) await rm(file, { force: true })
      }
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e
      const holder = await readLock(stateDir)
      if (holder && holderAlive(holder)) {
        throw new SnapferryError(
          'PIPELINE_LOCKED',
          `pipeline '${pipeline}' is busy: \`snapferry ${holder.command}\` runs as pid ${holder.pid} on ${holder.host} since ${holder.startedAt}`,
          {
            hint: 'wait for it, watch it with `snapferry status`, or stop it with `snapferry abort`',
            details: { ...holder },
          },
        )
      }
      await rm(file, { force: true }) // stale: its holder is gone
    }
  }
  throw new SnapferryError(
    'PIPELINE_LOCKED',
    `could not take the lock of pipeline '${pipeline}' in ${stateDir}`,
  )
}
