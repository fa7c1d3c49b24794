/** What `snapferry status` shows, computed from the journal alone. Pure; its JSON is documented in docs/CLI.md. */
import type { Decision } from '../convergence/convergence-policy.js'
import type { SerializedError } from '../errors/snapferry-error.js'
import type { CutoverOutcome, JournalEntry, Phase } from './journal-entries.js'
import type { LockInfo } from './pipeline-lock.js'

export interface StatusRound {
  readonly round: number
  readonly kind: 'base' | 'delta'
  readonly startedAt: string
  readonly volumes: number
  readonly changedBytes: number
  readonly streamBytes: number
  readonly extents: number
  readonly durationMs: number
}

export interface StatusSummary {
  readonly pipeline: string
  readonly phase: Phase | 'new'
  readonly running: LockInfo | null
  readonly volumes: readonly {
    readonly name: string
    readonly lastSnapshot: string | null
    readonly rounds: number
  }[]
  readonly rounds: readonly StatusRound[]
  readonly lastPrediction: {
    readonly round: number
    readonly windowMs: number
    readonly decision: Decision['action'] | string
    readonly reason: string
  } | null
  readonly cutover: CutoverOutcome | null
  readonly lastError: SerializedError | null
}

export function summarize(
  pipeline: string,
  volumeNames: readonly string[],
  journal: readonly JournalEntry[],
  running: LockInfo | null,
): StatusSummary {
  let phase: StatusSummary['phase'] = 'new'
  let lastPrediction: StatusSummary['lastPrediction'] = null
  let cutover: CutoverOutcome | null = null
  let lastError: SerializedError | null = null
  const byRound = new Map<number, StatusRound>()
  const last = new Map<string, string>()
  const count = new Map<string, number>()
  for (const e of journal) {
    if (e.type === 'phase') phase = e.phase
    else if (e.type === 'prediction')
      lastPrediction = {
        round: e.round,
        windowMs: e.prediction.windowMs,
        decision: e.decision,
        reason: e.reason,
      }
    else if (e.type === 'cutover-finished') cutover = e.result
    else if (e.type === 'run-started') lastError = null
    else if (e.type === 'run-finished' && e.error) lastError = e.error
    else if (e.type === 'round-completed') {
      const s = e.stats
      last.set(s.volume, s.toSnap)
      count.set(s.volume, (count.get(s.volume) ?? 0) + 1)
      const prev = byRound.get(s.round)
      const start = new Date(s.startedAt).toISOString()
      byRound.set(s.round, {
        round: s.round,
        kind: s.fromSnap === null ? 'base' : 'delta',
        startedAt: prev && prev.startedAt < start ? prev.startedAt : start,
        volumes: (prev?.volumes ?? 0) + 1,
        changedBytes: (prev?.changedBytes ?? 0) + s.dataBytes + s.zeroBytes,
        streamBytes: (prev?.streamBytes ?? 0) + s.streamBytes,
        extents: (prev?.extents ?? 0) + s.extents,
        durationMs: Math.max(prev?.durationMs ?? 0, s.totalMs),
      })
    }
  }
  return {
    pipeline,
    phase,
    running,
    volumes: volumeNames.map((name) => ({
      name,
      lastSnapshot: last.get(name) ?? null,
      rounds: count.get(name) ?? 0,
    })),
    rounds: [...byRound.values()].sort((a, b) => a.round - b.round),
    lastPrediction,
    cutover,
    lastError,
  }
}
