/** When to stop shipping deltas: converged, stalled, or keep going. Pure (docs/CONVERGENCE.md). */
import { formatBytes, formatDuration, formatRate } from '../config/units.js'
import type { Prediction } from './predictor.js'
import type { PipelineRound } from './round-stats.js'
import { changedBytes } from './round-stats.js'

export interface PolicyConfig {
  readonly targetDowntimeMs: number
  readonly minRounds: number
  readonly maxRounds: number
  readonly stallRounds: number
  readonly onStall: 'keep-trying' | 'fail' | 'cutover'
}

export type Decision =
  | { readonly action: 'continue'; readonly reason: string }
  | { readonly action: 'converged'; readonly reason: string }
  /** Not converging; `policy` is what the pipeline says to do about it. */
  | {
      readonly action: 'stalled'
      readonly policy: 'keep-trying' | 'fail' | 'cutover'
      readonly reason: string
      readonly maxRounds: boolean
    }

export function decide(
  rounds: readonly PipelineRound[],
  prediction: Prediction,
  cfg: PolicyConfig,
): Decision {
  const deltaRounds = rounds.filter((r) => r.volumes.some((v) => v.fromSnap !== null)).length
  const fits = prediction.windowMs <= cfg.targetDowntimeMs
  const versus = `predicted window ${formatDuration(prediction.windowMs)} vs target ${formatDuration(cfg.targetDowntimeMs)}`
  if (deltaRounds < cfg.minRounds)
    return {
      action: 'continue',
      reason: `warm-up: ${deltaRounds} of ${cfg.minRounds} delta rounds done; ${versus}`,
    }
  if (fits) return { action: 'converged', reason: `${versus}: fits` }
  const stall = stalled(rounds, cfg.stallRounds)
  if (stall) {
    return {
      action: 'stalled',
      policy: cfg.onStall,
      maxRounds: false,
      reason: `${stallText(rounds, cfg.stallRounds, prediction)}; ${versus}`,
    }
  }
  const outrun = outrunning(rounds, prediction)
  if (outrun) {
    return {
      action: 'stalled',
      policy: cfg.onStall,
      maxRounds: false,
      reason: `${outrun}; ${versus}`,
    }
  }
  if (deltaRounds >= cfg.maxRounds) {
    return {
      action: 'stalled',
      policy: cfg.onStall === 'keep-trying' ? 'fail' : cfg.onStall,
      maxRounds: true,
      reason: `reached maxRounds (${cfg.maxRounds}) without converging; ${versus}`,
    }
  }
  return { action: 'continue', reason: versus }
}

/** The last `n` deltas each failed to shrink by at least 10 % against the one before. */
export function stalled(rounds: readonly PipelineRound[], n: number): boolean {
  const sizes = rounds.filter((r) => r.volumes.some((v) => v.fromSnap !== null)).map(totalChanged)
  if (sizes.length < n + 1) return false
  const tail = sizes.slice(-(n + 1))
  for (let i = 1; i < tail.length; i++) if ((tail[i] as number) < 0.9 * (tail[i - 1] as number)) return false
  return true
}

/** Another round helps only if it ships less than the last one; less than this share of it. */
const NO_SHRINK = 0.9

/**
 * The next delta is predicted no smaller than the last one: the workload dirties as fast as a round
 * drains, so every further round only ends later with as much (or more) to ship inside the window.
 * Cutting over (or failing) now is the best that is left; waiting for `stallRounds` observed rounds
 * would make the final delta grow by as many rounds. Returns why, or undefined.
 *
 * One slow round is not a stall: when the rounds' usual drain rate (the last three together) says the
 * next round would leave less behind than it ships — next delta ÷ drain rate + the round's fixed time,
 * times the dirty rate, under 90 % of the next delta — another round still helps. On the downtime
 * bench a single round at a third of the usual rate (a busy OSD, a CPU-steal spike) otherwise cut
 * over with 24 MiB to ship where the rounds before had been shrinking the delta by half each.
 */
export function outrunning(rounds: readonly PipelineRound[], p: Prediction): string | undefined {
  const deltas = rounds.filter((r) => r.volumes.some((v) => v.fromSnap !== null))
  const last = deltas[deltas.length - 1]
  if (!last) return undefined
  const shipped = totalChanged(last)
  if (p.finalDeltaBytes < NO_SHRINK * shipped) return undefined
  if (p.drainBytesPerSecond > 0) {
    const fixedMs = Math.max(0, ...p.volumes.map((v) => v.snapshotMs + v.fixedMs))
    const nextRoundMs = (p.finalDeltaBytes / p.drainBytesPerSecond) * 1000 + fixedMs
    if ((p.dirtyBytesPerSecond * nextRoundMs) / 1000 < NO_SHRINK * p.finalDeltaBytes) return undefined
  }
  return (
    `deltas stopped shrinking: the next would be ~${formatBytes(p.finalDeltaBytes)} after the last round shipped ` +
    `${formatBytes(shipped)}; the workload dirties ${formatRate(p.dirtyBytesPerSecond)} and the rounds drain ` +
    `${formatRate(p.drainBytesPerSecond)}`
  )
}

function totalChanged(r: PipelineRound): number {
  return r.volumes.reduce((n, v) => n + changedBytes(v), 0)
}

function stallText(rounds: readonly PipelineRound[], n: number, p: Prediction): string {
  const sizes = rounds
    .filter((r) => r.volumes.some((v) => v.fromSnap !== null))
    .slice(-n)
    .map((r) => formatBytes(totalChanged(r)))
  return (
    `deltas stopped shrinking: the last ${n} rounds shipped ${sizes.join(', ')}; ` +
    `the workload dirties ${formatRate(p.dirtyBytesPerSecond)} and the rounds drain ${formatRate(p.drainBytesPerSecond)}`
  )
}
