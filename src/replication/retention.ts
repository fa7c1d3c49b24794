/** Which shared snapshots to remove after a round: keep the newest `keep` (the next delta's base among them). Pure. */

import { byRound } from '../drivers/snapshot-names.js'
import type { SnapshotInfo } from '../drivers/volume-driver.js'

export function snapshotsToPrune(
  shared: readonly SnapshotInfo[],
  keep: number,
  inFlightBase: string | null,
): string[] {
  const ordered = [...shared].sort(byRound)
  const drop = ordered.slice(0, Math.max(0, ordered.length - Math.max(1, keep)))
  return drop.map((s) => s.name).filter((n) => n !== inFlightBase)
}
