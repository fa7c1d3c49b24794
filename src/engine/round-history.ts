/** Rebuild the measured rounds from the journal, so a resumed run predicts from everything it measured. Pure. */
import type { PipelineRound, VolumeRoundStats } from '../convergence/round-stats.js'
import type { JournalEntry } from '../state/journal-entries.js'

/** Rounds since each volume's latest base, grouped by round number, in order. */
export function historyFromJournal(entries: readonly JournalEntry[]): PipelineRound[] {
  const perVolume = new Map<string, VolumeRoundStats[]>()
  for (const e of entries) {
    if (e.type !== 'round-completed') continue
    const s = e.stats
    const list = s.fromSnap === null ? [] : (perVolume.get(s.volume) ?? [])
    list.push(s)
    perVolume.set(s.volume, list)
  }
  const byRound = new Map<number, VolumeRoundStats[]>()
  for (const list of perVolume.values()) {
    for (const s of list) byRound.set(s.round, [...(byRound.get(s.round) ?? []), s])
  }
  return [...byRound.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([round, volumes]) => pipelineRound(round, volumes))
}

export function pipelineRound(round: number, volumes: readonly VolumeRoundStats[]): PipelineRound {
  const startedAt = Math.min(...volumes.map((v) => v.startedAt))
  const end = Math.max(...volumes.map((v) => v.startedAt + v.totalMs))
  return { round, volumes, startedAt, totalMs: end - startedAt }
}
