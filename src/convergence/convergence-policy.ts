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
  /**
   * Close to the target, take another round before cutting over while it is predicted to shrink the
   * final delta by 10 % or more (docs/CONVERGENCE.md, "Settling").
   */
  readonly settle: boolean
}

export type Decision =
  /** `settling`: the window fits already; the next decision is called with `settling` (decide). */
  | { readonly action: 'continue'; readonly reason: string; readonly settling?: true }
  | { readonly action: 'converged'; readonly reason: string }
  /** Not converging; `policy` is what the pipeline says to do about it. */
  | {
      readonly action: 'stalled'
      readonly policy: 'keep-trying' | 'fail' | 'cutover'
      readonly reason: string
      readonly maxRounds: boolean
    }

/**
 * What to do after a round. `settling`: the decision before this round was a settling round (the window
 * fitted already); then the answer is another settling round or converged, never more: a settling round
 * that did not shrink the window as predicted (a burst, or a model that over-predicts small rounds)
 * ends the settling rather than sending the loop back to converging, stalling or failing.
 */
export function decide(
  rounds: readonly PipelineRound[],
  prediction: Prediction,
  cfg: PolicyConfig,
  settling = false,
): Decision {
  const deltaRounds = rounds.filter((r) => r.volumes.some((v) => v.fromSnap !== null)).length
  const fits = prediction.windowMs <= cfg.targetDowntimeMs
  const versus = `predicted window ${formatDuration(prediction.windowMs)} vs target ${formatDuration(cfg.targetDowntimeMs)}`
  if (deltaRounds < cfg.minRounds)
    return {
      action: 'continue',
      reason: `warm-up: ${deltaRounds} of ${cfg.minRounds} delta rounds done; ${versus}`,
    }
  if (fits || settling) {
    const more = fits && cfg.settle && deltaRounds < cfg.maxRounds ? settleText(prediction, cfg) : undefined
    if (more) return { action: 'continue', reason: `${versus}: fits; ${more}`, settling: true }
    if (!fits)
      return { action: 'converged', reason: `${versus}: settling ends (the window fitted a round ago)` }
    return { action: 'converged', reason: `${versus}: fits` }
  }
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

/** Settling is for windows predicted close to the target: above this share of it. */
const SETTLE_ABOVE = 0.5

/**
 * The final delta if one more round ran before the cutover: what the workload writes while that round
 * ships today's final delta at `rate` (default: the rounds' usual drain rate) plus its snapshot and fixed
 * time, and during the before hooks, which no round shortens. Undefined without a rate.
 */
export function afterAnotherRound(p: Prediction, rate = p.drainBytesPerSecond): number | undefined {
  if (rate <= 0) return undefined
  const fixedMs = Math.max(0, ...p.volumes.map((v) => v.snapshotMs + v.fixedMs))
  const roundMs = (p.finalDeltaBytes / rate) * 1000 + fixedMs
  return (p.dirtyBytesPerSecond * (roundMs + p.beforeHooksMs)) / 1000
}

/**
 * How fast a warm round would ship today's final delta, by the predictor's own model: the rate it
 * gives the final round (final delta ÷ its send time), less what the workload takes of it while it
 * runs. The rounds' usual drain rate counts large early rounds too, and on the downtime bench it had a
 * settling round leave 1.98 MiB where it left 4.46. Infinity where the model has no send time.
 */
function warmRoundRate(p: Prediction): number {
  let rate = 0
  for (const v of p.volumes) {
    if (v.sendMs <= 0) return Number.POSITIVE_INFINITY
    rate += Math.max(0, v.finalDeltaBytes / (v.sendMs / 1000) - v.dirtyBytesPerSecond)
  }
  return rate
}

/**
 * Why one more round is worth taking although the window already fits, or undefined. The window must
 * be close to the target (predictions of small final rounds missed by up to 40 % on the downtime
 * bench, BENCHMARKS.md) and the round must shrink the final delta by 10 % or more; as the deltas settle
 * towards what the workload writes during a round's fixed time, that stops by itself.
 */
function settleText(p: Prediction, cfg: PolicyConfig): string | undefined {
  if (p.windowMs <= SETTLE_ABOVE * cfg.targetDowntimeMs) return undefined
  const next = afterAnotherRound(p, Math.min(p.drainBytesPerSecond, warmRoundRate(p)))
  if (next === undefined || next >= NO_SHRINK * p.finalDeltaBytes) return undefined
  return `settling: another round should leave ~${formatBytes(next)} to ship instead of ~${formatBytes(p.finalDeltaBytes)}`
}

/**
 * The next delta is predicted no smaller than the last one: the workload dirties as fast as a round
 * drains, so every further round only ends later with as much (or more) to ship inside the window.
 * Cutting over (or failing) now is the best that is left; waiting for `stallRounds` observed rounds
 * would make the final delta grow by as many rounds. Returns why, or undefined.
 *
 * One slow round is not a stall: when the rounds' usual drain rate (the last three together) says the
 * next round would leave less behind than it ships (afterAnotherRound under 90 % of the next delta),
 * another round still helps. On the downtime
 * bench a single round at a third of the usual rate (a busy OSD, a CPU-steal spike) otherwise cut
 * over with 24 MiB to ship where the rounds before had been shrinking the delta by half each.
 */
export function outrunning(rounds: readonly PipelineRound[], p: Prediction): string | undefined {
  const deltas = rounds.filter((r) => r.volumes.some((v) => v.fromSnap !== null))
  const last = deltas[deltas.length - 1]
  if (!last) return undefined
  const shipped = totalChanged(last)
  if (p.finalDeltaBytes < NO_SHRINK * shipped) return undefined
  const next = afterAnotherRound(p)
  if (next !== undefined && next < NO_SHRINK * p.finalDeltaBytes) return undefined
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
