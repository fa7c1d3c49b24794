/**
 * The convergence controller: ship rounds until the predicted cutover window fits the target, then cut
 * over or hold the copy warm; say plainly when deltas stop shrinking and follow the stall policy.
 */

import { formatBytes, formatDuration, formatRate } from '../config/units.js'
import { verifyByVolume } from '../config/verify-level.js'
import { type Decision, decide } from '../convergence/convergence-policy.js'
import { type PendingMeasurement, type Prediction, predictWindow } from '../convergence/predictor.js'
import type { PipelineRound } from '../convergence/round-stats.js'
import { SnapferryError } from '../errors/snapferry-error.js'
import { abortableSleep } from '../replication/abortable-sleep.js'
import type { EngineContext } from './engine-context.js'
import { type EarlyPending, measureEarly, measurePending } from './pending-measure.js'
import { type RoundHooks, type RoundOutlook, runPipelineRound } from './pipeline-round.js'
import type { VolumeState } from './reconcile.js'
import { takeCutoverRequest } from './requests.js'

export interface ConvergeResult {
  /** Why the loop ended: time to cut over (converged, policy, or operator request). */
  readonly reason: string
  readonly prediction: Prediction
}

export interface ConvergeOptions {
  /** Cut over once converged even when the pipeline says hold. */
  readonly cutoverWhenConverged: boolean
  /** Measured hook durations from an earlier cutover, if any. */
  readonly hookMs: { before: number | undefined; after: number | undefined }
}

export async function converge(
  ctx: EngineContext,
  states: VolumeState[],
  rounds: PipelineRound[],
  opts: ConvergeOptions,
): Promise<ConvergeResult> {
  const c = ctx.cfg.convergence
  const early = new Map<string, EarlyPending>()
  const hooks: RoundHooks = {
    onExported: (s, snapshot) => early.set(s.pair.name, measureEarly(ctx, s, snapshot)),
  }
  if (states.some((s) => s.last === null)) {
    await ctx.journal.append({ type: 'phase', phase: 'base' })
    ctx.reporter.line(
      `base: shipping ${states
        .filter((s) => s.last === null)
        .map((s) => s.pair.name)
        .join(', ')}`,
    )
    const todo = states.filter((s) => s.last === null)
    const sizes = await Promise.all(todo.map(async (s) => (await s.pair.source.describe(ctx.signal)).size))
    const base = await runPipelineRound(ctx, todo, { expectedBytes: sizes.reduce((a, b) => a + b, 0) }, hooks)
    rounds.push(base)
    reportRound(ctx, base)
  }
  await ctx.journal.append({ type: 'phase', phase: 'converging' })
  let stallReported = false
  let settling = false
  for (;;) {
    const pending = await measurePending(ctx, states, early)
    const prediction = predict(ctx, rounds, opts, pending)
    const decision = decide(
      rounds,
      prediction,
      {
        targetDowntimeMs: c.targetDowntime,
        minRounds: c.minRounds,
        maxRounds: c.maxRounds,
        stallRounds: c.stallRounds,
        onStall: c.onStall,
        settle: c.settle,
      },
      settling,
    )
    settling = decision.action === 'continue' && decision.settling === true
    await ctx.journal.append({
      type: 'prediction',
      round: rounds.at(-1)?.round ?? 0,
      prediction,
      ...(pending ? { pending } : {}),
      decision: decisionName(decision),
      reason: decision.reason,
    })
    ctx.reporter.line(
      `  prediction: ${describePrediction(prediction)} → ${decisionName(decision)} (${decision.reason})`,
    )
    if (decision.action === 'converged') {
      if (c.whenConverged === 'cutover' || opts.cutoverWhenConverged)
        return { reason: decision.reason, prediction }
      return hold(ctx, states, rounds, opts)
    }
    if (decision.action === 'stalled') {
      if (decision.policy === 'fail') {
        throw new SnapferryError(
          decision.maxRounds ? 'MAX_ROUNDS_REACHED' : 'CONVERGENCE_STALLED',
          `not converging: ${decision.reason}`,
          {
            hint: 'raise the bandwidth limit, slow the workload, accept a longer targetDowntime, or set onStall: cutover to cut over anyway',
            details: { prediction },
          },
        )
      }
      if (decision.policy === 'cutover') {
        ctx.reporter.line(`  not converging; cutting over anyway as the pipeline says (onStall: cutover)`)
        return { reason: `cutover anyway: ${decision.reason}`, prediction }
      }
      if (!stallReported)
        ctx.reporter.line('  not converging; keeping on as the pipeline says (onStall: keep-trying)')
      stallReported = true
    }
    // Another round: the last one's retention runs once its snapshot exists, while it ships. Not before a
    // cutover, which would otherwise wait for it (settlePruning) while the workload still writes into the
    // final delta.
    if (c.roundInterval > 0) await abortableSleep(c.roundInterval, ctx.signal)
    const outlook = outlookFrom(prediction, c.roundInterval)
    const r = await runPipelineRound(ctx, states, { ...outlook, prune: 'after-snapshot' }, hooks)
    rounds.push(r)
    reportRound(ctx, r, outlook)
  }
}

/** Converged and told to hold: keep the copy warm with rounds every holdInterval until asked to cut over. */
async function hold(
  ctx: EngineContext,
  states: VolumeState[],
  rounds: PipelineRound[],
  opts: ConvergeOptions,
): Promise<ConvergeResult> {
  await ctx.journal.append({ type: 'phase', phase: 'holding' })
  ctx.reporter.line(
    `converged: holding the destination warm (a round every ${formatDuration(ctx.cfg.convergence.holdInterval)}); \`snapferry cutover ${ctx.cfg.file}\` cuts over`,
  )
  for (;;) {
    const deadline = performance.now() + ctx.cfg.convergence.holdInterval
    while (performance.now() < deadline) {
      if (await takeCutoverRequest(ctx.cfg.stateDir)) {
        ctx.reporter.line('cutover requested')
        return {
          reason: 'cutover requested by the operator',
          prediction: predict(ctx, rounds, opts, await measurePending(ctx, states)),
        }
      }
      await abortableSleep(Math.min(500, Math.max(0, deadline - performance.now())), ctx.signal)
    }
    const outlook = outlookFrom(
      predict(ctx, rounds, opts, await measurePending(ctx, states)),
      ctx.cfg.convergence.holdInterval,
    )
    const r = await runPipelineRound(ctx, states, outlook)
    rounds.push(r)
    reportRound(ctx, r, outlook)
    const p = predict(ctx, rounds, opts, await measurePending(ctx, states))
    await ctx.journal.append({
      type: 'prediction',
      round: r.round,
      prediction: p,
      decision: 'hold',
      reason: 'holding warm',
    })
    ctx.reporter.line(`  prediction: ${describePrediction(p)} (holding)`)
  }
}

function predict(
  ctx: EngineContext,
  rounds: readonly PipelineRound[],
  opts: ConvergeOptions,
  pending?: PendingMeasurement,
): Prediction {
  const hooks = ctx.cfg.cutover
  return predictWindow({
    rounds,
    bandwidthLimit: ctx.cfg.transport.bandwidth,
    verify: verifyByVolume(ctx.cfg),
    beforeHooksMs: hooks.before.length === 0 ? 0 : opts.hookMs.before,
    afterHooksMs: hooks.after.length === 0 ? 0 : opts.hookMs.after,
    concurrency: ctx.cfg.concurrency,
    pauseBeforeCutoverMs: 0,
    pendingBytes: pending?.bytes,
    pendingAgeMs: pending?.ageMs,
    pendingSinceSnapshotMs: pending?.sinceSnapshotMs,
  })
}

/**
 * What the next round should move: the final delta the predictor expects if the workload stopped now,
 * plus what it writes during `extraMs` more (the pause before a regular round; 0 for the final one).
 */
export function outlookFrom(p: Prediction, extraMs = 0): RoundOutlook {
  if (p.dirtyBytesPerSecond <= 0) return { predictedWindowMs: p.windowMs }
  return {
    expectedBytes: p.finalDeltaBytes + (p.dirtyBytesPerSecond * extraMs) / 1000,
    predictedWindowMs: p.windowMs,
  }
}

function decisionName(d: Decision): string {
  return d.action === 'stalled' ? `stalled (${d.policy})` : d.action
}

export function describePrediction(p: Prediction): string {
  let link = Number.isFinite(p.linkBytesPerSecond)
    ? formatRate(p.linkBytesPerSecond)
    : 'a link not measured yet'
  const caps = p.volumes.map((v) => v.extentCapacity).filter(Number.isFinite)
  if (caps.length > 0) link += ` or ${Math.round(Math.min(...caps))} extents/s`
  return `window ${formatDuration(p.windowMs)} (final delta ~${formatBytes(p.finalDeltaBytes)} at ${link}, round ${formatDuration(p.finalRoundMs)}, verify ${formatDuration(p.verifyMs)}, hooks ${formatDuration(p.beforeHooksMs + p.afterHooksMs)}); dirty ${formatRate(p.dirtyBytesPerSecond)}`
}

/** The round's measurement, next to what the previous prediction expected it to move. */
export function reportRound(ctx: EngineContext, r: PipelineRound, outlook?: RoundOutlook): void {
  const bytes = r.volumes.reduce((n, v) => n + v.streamBytes, 0)
  const changed = r.volumes.reduce((n, v) => n + v.dataBytes + v.zeroBytes, 0)
  const kind = r.volumes.every((v) => v.fromSnap === null) ? 'base' : 'delta'
  const expected =
    outlook?.expectedBytes !== undefined ? ` (predicted ~${formatBytes(outlook.expectedBytes)})` : ''
  ctx.reporter.line(
    `round ${r.round} (${kind}): ${formatBytes(changed)} changed${expected}, ${formatBytes(bytes)} on the wire, ${r.volumes.reduce((n, v) => n + v.extents, 0)} extents in ${formatDuration(r.totalMs)}`,
  )
}
