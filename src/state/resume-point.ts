/**
 * Where a volume resumes: computed from what both sides actually hold (the destination's snapshots are
 * the truth) and what the journal says was under way. Pure.
 */
import { byRound, roundOf } from '../drivers/snapshot-names.js'
import type { HeadState, SnapshotInfo } from '../drivers/volume-driver.js'
import type { JournalEntry } from './journal-entries.js'

export interface ResumePlan {
  readonly volume: string
  /** Newest snapshot complete on both sides: the next delta starts here. Null: ship a base. */
  readonly resumeFrom: string | null
  readonly nextRound: number
  /** Snapferry snapshots that cannot serve as a base and are removed before the next round. */
  readonly deleteOnSource: readonly string[]
  readonly deleteOnDestination: readonly string[]
  /** The journal shows snapferry started a base into this destination: replacing its data is ours to do. */
  readonly baseStartedByUs: boolean
  readonly notes: readonly string[]
}

export function planResume(
  volume: string,
  source: readonly SnapshotInfo[],
  destination: readonly SnapshotInfo[],
  journal: readonly JournalEntry[],
): ResumePlan {
  const notes: string[] = []
  const srcDone = new Set(source.filter((s) => s.complete).map((s) => s.name))
  const shared = destination.filter((d) => d.complete && srcDone.has(d.name)).sort(byRound)
  const resume = shared[shared.length - 1]
  const resumeRound = resume ? (roundOf(resume.name) ?? 0) : -1
  const newer = (s: SnapshotInfo) => !resume || byRound(s, resume) > 0
  const deleteOnSource = source
    .filter((s) => !s.complete || (newer(s) && s.name !== resume?.name))
    .map((s) => s.name)
  const deleteOnDestination = destination
    .filter((d) => !d.complete || (newer(d) && d.name !== resume?.name))
    .map((d) => d.name)
  for (const n of deleteOnSource)
    notes.push(`source snapshot ${n} was never applied on the destination: removing it`)
  for (const n of deleteOnDestination)
    notes.push(`destination snapshot ${n} has no complete counterpart on the source: removing it`)
  const baseStartedByUs = journal.some(
    (e) => e.type === 'transfer-started' && e.volume === volume && e.from === null,
  )
  if (resume) notes.push(`resuming from ${resume.name}, shared by both sides`)
  else if (baseStartedByUs)
    notes.push('no shared snapshot: the base is shipped again (the earlier one did not finish)')
  return {
    volume,
    resumeFrom: resume?.name ?? null,
    nextRound: resumeRound + 1,
    deleteOnSource,
    deleteOnDestination,
    baseStartedByUs,
    notes,
  }
}

/** How to treat a destination head that does not equal the resume snapshot. */
export function repairDecision(
  head: HeadState,
  allowOverwriteModified: boolean,
): 'none' | 'repair' | 'refuse' {
  if (head.matches) return 'none'
  if (head.reason === 'interrupted-apply') return 'repair'
  if (head.reason === 'modified') return allowOverwriteModified ? 'repair' : 'refuse'
  return 'refuse'
}
