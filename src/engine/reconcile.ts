/** Bring one volume to a known state before rounds: resume point, stale snapshots, destination head. */
import type { Extent } from '../drivers/volume-driver.js'
import { SnapferryError } from '../errors/snapferry-error.js'
import type { VolumePair } from '../replication/volume-pair.js'
import type { Journal } from '../state/journal.js'
import type { JournalEntry } from '../state/journal-entries.js'
import { planResume, repairDecision } from '../state/resume-point.js'

export interface VolumeState {
  readonly pair: VolumePair
  /** The newest snapshot both sides share (the next delta's start); null before the base. */
  last: string | null
  lastSnapshotAt: number | null
  nextRound: number
  /** Destination extents to re-send with the next delta. */
  repair: Extent[] | undefined
  /** The next base may replace destination data. */
  overwrite: boolean
  /** Retention running behind the rounds (see settlePruning). */
  pruning?: Promise<void> | undefined
}

export interface ReconcileOptions {
  /** Re-send extents that something other than snapferry changed on the destination. */
  readonly repairDestination: boolean
  /** A base may replace a destination that holds data snapferry did not write. */
  readonly overwriteDestination: boolean
}

export async function reconcileVolume(
  pair: VolumePair,
  history: readonly JournalEntry[],
  journal: Journal,
  opts: ReconcileOptions,
  signal?: AbortSignal,
): Promise<VolumeState> {
  const [src, dst] = await Promise.all([
    pair.source.listSnapshots(signal),
    pair.destination.listSnapshots(signal),
  ])
  const plan = planResume(pair.name, src, dst, history)
  for (const [side, names] of [
    ['source', plan.deleteOnSource],
    ['destination', plan.deleteOnDestination],
  ] as const) {
    for (const name of names) {
      await journal.append({ type: 'snapshot-deleting', volume: pair.name, side, name })
      await pair[side].deleteSnapshot(name, signal)
      await journal.append({ type: 'snapshot-deleted', volume: pair.name, side, name })
    }
  }
  let repair: Extent[] | undefined
  if (plan.resumeFrom) {
    const head = await pair.destination.checkHead(plan.resumeFrom, signal)
    const decision = repairDecision(head, opts.repairDestination)
    if (decision === 'refuse' && !head.matches) {
      throw new SnapferryError(
        'DEST_HEAD_DIVERGED',
        `destination of volume ${pair.name} no longer equals snapshot ${plan.resumeFrom}: ${head.detail}`,
        {
          hint: 'something other than snapferry wrote to the destination. Find out what; then `snapferry run --repair-destination` re-sends the changed extents',
          details: { volume: pair.name, snapshot: plan.resumeFrom, reason: head.reason },
        },
      )
    }
    if (decision === 'repair') {
      if (!pair.destination.capabilities.headDiff) {
        throw new SnapferryError(
          'DEST_HEAD_DIVERGED',
          `destination of volume ${pair.name} diverged from ${plan.resumeFrom} and its driver cannot list the changed extents`,
          {
            hint: 'abort with --clean-snapshots and ship a new base',
          },
        )
      }
      repair = await pair.destination.headChangesSince(plan.resumeFrom, signal)
    }
  }
  const completed = history.find(
    (e) => e.type === 'round-completed' && e.stats.volume === pair.name && e.stats.toSnap === plan.resumeFrom,
  )
  const state: VolumeState = {
    pair,
    last: plan.resumeFrom,
    lastSnapshotAt: completed?.type === 'round-completed' ? completed.stats.startedAt : null,
    nextRound: plan.nextRound,
    repair,
    overwrite: plan.resumeFrom === null && (plan.baseStartedByUs || opts.overwriteDestination),
  }
  await journal.append({
    type: 'reconciled',
    volume: pair.name,
    resumeFrom: plan.resumeFrom,
    nextRound: plan.nextRound,
    repair: repair !== undefined,
    notes: [
      ...plan.notes,
      ...(repair
        ? [`destination apply was interrupted: re-sending ${repair.length} extents with the next delta`]
        : []),
    ],
  })
  return state
}
