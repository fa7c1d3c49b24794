/** Build and run the cutover runbook: before hooks → final round → verify → after hooks (rollback on failure). */

import { RemoteVolumeDriver } from '../agent-protocol/remote-volume-driver.js'
import { formatDuration } from '../config/units.js'
import { effectiveVerify } from '../config/verify-level.js'
import type { Prediction } from '../convergence/predictor.js'
import type { PipelineRound } from '../convergence/round-stats.js'
import { hookSteps, type TypedStepFactory } from '../cutover/hook-steps.js'
import { type RunbookResult, type RunbookStep, runRunbook } from '../cutover/runbook.js'
import type { RecordDigest } from '../drivers/volume-driver.js'
import { asSnapferryError, SnapferryError } from '../errors/snapferry-error.js'
import { markDestinations } from '../openstack/openstack-run.js'
import { openstackStep } from '../openstack/openstack-steps.js'
import { outlookFrom, reportRound } from './converge.js'
import type { EngineContext } from './engine-context.js'
import { mapLimit } from './map-limit.js'
import { pruneSnapshots, removeAllSnapshots, runPipelineRound, settlePruning } from './pipeline-round.js'
import type { VolumeState } from './reconcile.js'

export interface CutoverRun {
  readonly result: RunbookResult
  readonly finalRound: PipelineRound | undefined
  readonly finalSnapshots: Record<string, string>
}

export async function runCutover(
  ctx: EngineContext,
  states: VolumeState[],
  prediction: Prediction | null,
): Promise<CutoverRun> {
  const cfg = ctx.cfg
  const finalSnapshots: Record<string, string> = {}
  let finalRound: PipelineRound | undefined
  const snaps = () => finalSnapshots
  const os = ctx.openstack
  const typed: TypedStepFactory | undefined = os
    ? (entry, phase, prefix) =>
        openstackStep({ run: os, pipeline: cfg.name, log: ctx.log }, entry, phase, prefix)
    : undefined
  const steps: RunbookStep[] = [
    ...hookSteps(cfg, cfg.cutover.before, 'before', snaps, typed),
    {
      name: 'final-delta',
      kind: 'final-round',
      phase: 'transfer',
      run: async () => {
        const outlook = prediction ? outlookFrom(prediction) : {}
        finalRound = await runPipelineRound(ctx, states, { ...outlook, prune: false })
        for (const s of states) finalSnapshots[s.pair.name] = s.last as string
        reportRound(ctx, finalRound, outlook)
        return { output: `final snapshots: ${Object.values(finalSnapshots).join(', ')}` }
      },
    },
    ...(cfg.cutover.verify === 'none' ? [] : [verifyStep(ctx, states)]),
    ...hookSteps(cfg, cfg.cutover.after, 'after', snaps, typed),
  ]
  const rollback = hookSteps(cfg, cfg.cutover.rollback, 'rollback', snaps, typed)
  // No snapshot deletion may compete with the final round inside the window.
  await settlePruning(states)
  await ctx.journal.append({ type: 'phase', phase: 'cutover' })
  ctx.reporter.line(
    `cutover: ${steps.map((s) => s.name).join(' → ')}${prediction ? ` (predicted window ${formatDuration(prediction.windowMs)})` : ''}`,
  )
  const result = await runRunbook(steps, rollback, ctx.journal, ctx.signal)
  ctx.log.info({ result }, `cutover ${result.status}`)
  // The destination volumes say what they are: the moved volumes, or a copy that must not be used.
  if (os)
    await markDestinations(
      os,
      result.status === 'ok' ? 'moved' : result.status === 'rolled-back' ? 'rolled-back' : 'cutover-failed',
      ctx.log,
    )
  if (os && result.status === 'ok') {
    // A finished OpenStack move leaves no snapshot behind: Cinder could not delete those volumes later.
    const removed = await mapLimit(states, cfg.concurrency, (s) => removeAllSnapshots(ctx, s)).catch(
      (e: unknown) => {
        ctx.log.warn(
          { err: asSnapferryError(e).toJSON() },
          'removing snapferry snapshots after the move failed',
        )
        ctx.reporter.line(
          `openstack: removing snapferry's snapshots failed (${asSnapferryError(e).message}); \`snapferry abort --clean-snapshots\` removes them — Cinder cannot delete a volume that has them`,
        )
        return undefined
      },
    )
    if (removed)
      ctx.reporter.line(
        `openstack: removed snapferry's ${removed.reduce((a, b) => a + b, 0)} snapshots from both sides (Cinder cannot delete volumes with snapshots it does not know)`,
      )
  } else if (finalRound) {
    // Retention deferred from the final round, now that the downtime is over.
    await mapLimit(states, cfg.concurrency, (s) => pruneSnapshots(ctx, s)).catch((e: unknown) =>
      ctx.log.warn({ err: asSnapferryError(e).toJSON() }, 'pruning old snapshots after the cutover failed'),
    )
  }
  for (const r of [...result.steps, ...result.rollback]) {
    ctx.reporter.line(
      `  ${r.status.padEnd(7)} ${r.name}${r.status === 'not-run' ? '' : ` (${formatDuration(r.durationMs)})`}${r.error ? `: ${r.error.message}` : ''}`,
    )
  }
  await ctx.journal.append({
    type: 'cutover-finished',
    result: {
      status: result.status,
      downtimeMs: result.downtimeMs,
      predictedMs: prediction?.windowMs ?? null,
      finalSnapshot: finalSnapshots,
      steps: [...result.steps, ...result.rollback].map((s) => ({
        name: s.name,
        kind: s.kind,
        status: s.status,
        durationMs: s.durationMs,
      })),
    },
  })
  await ctx.journal.append({
    type: 'phase',
    phase: result.status === 'ok' ? 'done' : result.status === 'rolled-back' ? 'rolled-back' : 'failed',
  })
  return { result, finalRound, finalSnapshots }
}

/** The final snapshot's record digests, where both sides keep records (verify: records). */
async function recordDigests(
  s: VolumeState,
  signal?: AbortSignal,
): Promise<[RecordDigest, RecordDigest] | undefined> {
  const snap = s.last as string
  const get = async (d: VolumeState['pair']['source']) =>
    d instanceof RemoteVolumeDriver ? d.recordDigestIfAny(snap, signal) : d.recordDigest?.(snap, signal)
  const [a, b] = await Promise.all([get(s.pair.source), get(s.pair.destination)])
  return a && b && a.blockSize === b.blockSize ? [a, b] : undefined
}

/**
 * Verification while the workload is stopped: sha256 of every byte on both sides (`full`), or, with
 * `records`, the digests of both sides' block-hash records of the final snapshot where both keep them.
 */
function verifyStep(ctx: EngineContext, states: VolumeState[]): RunbookStep {
  return {
    name: 'verify',
    kind: 'verify',
    phase: 'verify',
    run: async (signal) => {
      const lines = await mapLimit(states, ctx.cfg.concurrency, async (s) => {
        const snap = s.last as string
        if (effectiveVerify(ctx.cfg, s.pair.config) === 'records') {
          const digests = await recordDigests(s, signal)
          if (digests) {
            const [a, b] = digests
            if (a.digest !== b.digest || a.size !== b.size)
              throw mismatch(
                s,
                snap,
                `record digest ${b.digest.slice(0, 16)}… vs ${a.digest.slice(0, 16)}…`,
                { source: a, destination: b },
              )
            return `${s.pair.name}: block-hash records of ${snap} equal on both sides (sha256 ${a.digest}, ${a.size} bytes in ${a.blockSize}-byte blocks)`
          }
          if (bothFrozen(s)) return frozenChainCheck(s, snap, signal)
        }
        const at = (frozen: boolean) => (frozen ? { snapshot: snap } : ('head' as const))
        const [a, b] = await Promise.all([
          s.pair.source.checksum(at(s.pair.source.capabilities.frozenSnapshots), signal),
          s.pair.destination.checksum(at(s.pair.destination.capabilities.frozenSnapshots), signal),
        ])
        if (a.digest !== b.digest || a.size !== b.size) {
          throw mismatch(
            s,
            snap,
            `sha256 ${b.digest.slice(0, 16)}… vs ${a.digest.slice(0, 16)}…, ${b.size} vs ${a.size} bytes`,
            { source: a, destination: b },
          )
        }
        return `${s.pair.name}: sha256 ${a.digest} (${a.size} bytes) on both sides`
      })
      return { output: lines.join('\n') }
    },
  }
}

function bothFrozen(s: VolumeState): boolean {
  return s.pair.source.capabilities.frozenSnapshots && s.pair.destination.capabilities.frozenSnapshots
}

/**
 * `verify: records` between frozen-snapshot volumes (rbd ↔ rbd): every delta since the base was applied
 * onto a head proven equal to its start snapshot, and its stream digest matched on both sides; here the final
 * snapshot must exist on both sides with the same size. Two snapshot listings instead of reading both
 * volumes; `verify: full` reads every byte.
 */
async function frozenChainCheck(s: VolumeState, snap: string, signal?: AbortSignal): Promise<string> {
  const [src, dst] = await Promise.all([
    s.pair.source.listSnapshots(signal),
    s.pair.destination.listSnapshots(signal),
  ])
  const a = src.find((x) => x.name === snap)
  const b = dst.find((x) => x.name === snap && x.complete)
  if (!a || !b || a.size !== b.size)
    throw mismatch(
      s,
      snap,
      !b ? 'the final snapshot is missing on the destination' : `size ${b.size} vs ${a?.size ?? 'missing'}`,
      { source: a ?? null, destination: b ?? null },
    )
  return `${s.pair.name}: ${snap} on both sides (${a.size} bytes); every delta's stream digest matched end to end and was applied onto a head proven equal to its start (verify: records)`
}

function mismatch(
  s: VolumeState,
  snap: string,
  what: string,
  details: Record<string, unknown>,
): SnapferryError {
  return new SnapferryError(
    'VERIFY_MISMATCH',
    `volume ${s.pair.name}: destination differs from the source at ${snap} (${what})`,
    {
      hint: 'the destination is not promoted; rollback hooks ran. Run again: the next round repairs the copy',
      details: { volume: s.pair.name, snapshot: snap, ...details },
    },
  )
}
