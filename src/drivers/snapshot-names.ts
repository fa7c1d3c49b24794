/** snapferry owns snapshot names with this prefix and never touches any other. */
import { SnapferryError } from '../errors/snapferry-error.js'

export const SNAPSHOT_PREFIX = 'snapferry-'
const VALID = /^snapferry-[A-Za-z0-9._-]{1,100}$/

export function isOwnSnapshot(name: string): boolean {
  return name.startsWith(SNAPSHOT_PREFIX)
}

export function assertOwnSnapshotName(name: string, volume: string): void {
  if (!VALID.test(name)) {
    throw new SnapferryError(
      'SNAPSHOT_NAME_INVALID',
      `refusing snapshot name '${name}' on ${volume}: snapferry only manages snapshots named ${SNAPSHOT_PREFIX}<letters, digits, . _ ->`,
      {
        hint: 'snapshots of other tools are never touched; pass a snapferry-owned name',
        details: { volume, snapshot: name },
      },
    )
  }
}

/** snapferry-0003-20261121T232000123Z: round number for humans, time for uniqueness across runs. */
export function snapshotName(round: number, at: Date): string {
  const ts = at.toISOString().replace(/[-:]/g, '').replace('.', '')
  return `${SNAPSHOT_PREFIX}${String(round).padStart(4, '0')}-${ts}`
}

/** The round number encoded in a snapferry snapshot name, if any. */
export function roundOf(name: string): number | undefined {
  const m = /^snapferry-(\d{4,})-/.exec(name)
  return m ? Number(m[1]) : undefined
}

/** Order snapshots by round (numerically), then by name. */
export function byRound(a: { name: string }, b: { name: string }): number {
  return (roundOf(a.name) ?? -1) - (roundOf(b.name) ?? -1) || a.name.localeCompare(b.name)
}
