/** The journal's entries: one JSON object per line, appended and synced before/after every side effect. */
import type { PendingMeasurement, Prediction } from '../convergence/predictor.js'
import type { VolumeRoundStats } from '../convergence/round-stats.js'
import type { SerializedError } from '../errors/snapferry-error.js'

export type Side = 'source' | 'destination'

export type JournalEvent =
  | {
      readonly type: 'run-started'
      readonly runId: string
      readonly pid: number
      readonly volumes: readonly string[]
    }
  | {
      readonly type: 'reconciled'
      readonly volume: string
      readonly resumeFrom: string | null
      readonly nextRound: number
      readonly repair: boolean
      readonly notes: readonly string[]
    }
  | {
      readonly type: 'snapshot-creating'
      readonly volume: string
      readonly round: number
      readonly name: string
    }
  | {
      readonly type: 'snapshot-created'
      readonly volume: string
      readonly round: number
      readonly name: string
    }
  | {
      readonly type: 'transfer-started'
      readonly volume: string
      readonly round: number
      readonly from: string | null
      readonly to: string
      readonly repairExtents: number
    }
  | { readonly type: 'round-completed'; readonly stats: VolumeRoundStats }
  | {
      readonly type: 'round-failed'
      readonly volume: string
      readonly round: number
      readonly error: SerializedError
    }
  | {
      readonly type: 'snapshot-deleting'
      readonly volume: string
      readonly side: Side
      readonly name: string
    }
  | { readonly type: 'snapshot-deleted'; readonly volume: string; readonly side: Side; readonly name: string }
  | {
      readonly type: 'prediction'
      readonly round: number
      readonly prediction: Prediction
      /** What the sources measured as pending, when they could (rbd behind agents). */
      readonly pending?: PendingMeasurement | undefined
      readonly decision: string
      readonly reason: string
    }
  | { readonly type: 'phase'; readonly phase: Phase; readonly detail?: string }
  | {
      readonly type: 'cutover-step'
      readonly step: string
      readonly kind: string
      readonly status: 'started' | 'ok' | 'failed'
      readonly durationMs?: number
      readonly output?: string
      readonly error?: SerializedError
      /** Typed OpenStack steps: the API calls made (method, URL, status; bodies redacted). */
      readonly requests?: readonly Record<string, unknown>[]
    }
  | { readonly type: 'cutover-finished'; readonly result: CutoverOutcome }
  | { readonly type: 'run-finished'; readonly exitCode: number; readonly error?: SerializedError }

export type Phase =
  | 'reconciling'
  | 'base'
  | 'converging'
  | 'holding'
  | 'cutover'
  | 'rolled-back'
  | 'done'
  | 'failed'
  | 'aborted'

export interface CutoverOutcome {
  readonly status: 'ok' | 'rolled-back' | 'failed'
  readonly downtimeMs: number
  readonly predictedMs: number | null
  readonly finalSnapshot: Record<string, string>
  readonly steps: readonly {
    readonly name: string
    readonly kind: string
    readonly status: 'ok' | 'failed' | 'not-run'
    readonly durationMs: number
  }[]
}

export type JournalEntry = JournalEvent & { readonly seq: number; readonly at: string }
