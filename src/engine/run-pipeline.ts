/**
 * Run a pipeline: lock, journal, agents, reconcile every volume, then converge (base + delta rounds)
 * and cut over — or, for `snapferry cutover`, cut over straight away. The single entry of the engine.
 */
import { randomUUID } from 'node:crypto'
import type { PipelineConfig } from '../config/pipeline-config.js'
import type { Prediction } from '../convergence/predictor.js'
import type { RunbookResult } from '../cutover/runbook.js'
import { asSnapferryError, SnapferryError } from '../errors/snapferry-error.js'
import type { Logger } from '../logging/logger.js'
import type { OpenStackRun } from '../openstack/openstack-run.js'
import { resolveOpenStack } from '../openstack/resolve-volumes.js'
import { tokenBucket } from '../replication/rate-limiter.js'
import { Journal, readJournal } from '../state/journal.js'
import type { JournalEntry } from '../state/journal-entries.js'
import { acquireLock } from '../state/pipeline-lock.js'
import { converge } from './converge.js'
import { runCutover } from './cutover-run.js'
import type { EngineContext } from './engine-context.js'
import { openVolumes } from './open-volumes.js'
import { settlePruning } from './pipeline-round.js'
import { reconcileVolume, type VolumeState } from './reconcile.js'
import { historyFromJournal } from './round-history.js'
import type { RunReporter } from './run-reporter.js'

export interface RunPipelineOptions {
  /** `run`: converge, then cut over if the pipeline (or cutoverWhenConverged) says so. `cutover`: cut over now. */
  readonly mode: 'run' | 'cutover'
  readonly cutoverWhenConverged: boolean
  readonly repairDestination: boolean
  readonly overwriteDestination: boolean
  readonly reporter: RunReporter
  readonly log: Logger
  readonly signal: AbortSignal
}

export interface RunPipelineResult {
  readonly cutover: RunbookResult
  readonly prediction: Prediction | undefined
  readonly rounds: number
}

export async function runPipeline(
  pipeline: PipelineConfig,
  o: RunPipelineOptions,
): Promise<RunPipelineResult> {
  const release = await acquireLock(pipeline.stateDir, pipeline.name, `${o.mode} ${pipeline.file}`)
  const history = await readJournal(pipeline.stateDir)
  const journal = await Journal.open(pipeline.stateDir)
  let volumes: Awaited<ReturnType<typeof openVolumes>> | undefined
  let states: VolumeState[] = []
  let openstack: OpenStackRun | undefined
  let cfg = pipeline
  try {
    // Cinder volumes become rbd images (creating destination volumes) under the lock, before any agent.
    const resolved = await resolveOpenStack(pipeline, { create: true, log: o.log, signal: o.signal })
    cfg = resolved.cfg
    openstack = resolved.openstack
    for (const m of resolved.mapping) o.reporter.line(`openstack: ${m}`)
    await journal.append({
      type: 'run-started',
      runId: randomUUID(),
      pid: process.pid,
      volumes: cfg.volumes.map((v) => v.name),
    })
    await journal.append({ type: 'phase', phase: 'reconciling' })
    volumes = await openVolumes(cfg, o.log, o.signal)
    const ctx: EngineContext = {
      cfg,
      journal,
      history,
      log: o.log,
      reporter: o.reporter,
      limiter: Number.isFinite(cfg.transport.bandwidth) ? tokenBucket(cfg.transport.bandwidth) : undefined,
      reconcile: { repairDestination: o.repairDestination, overwriteDestination: o.overwriteDestination },
      signal: o.signal,
      openstack,
    }
    states = []
    for (const pair of volumes.pairs) {
      const s = await reconcileVolume(pair, history, journal, ctx.reconcile, o.signal)
      o.reporter.line(
        `volume ${pair.name}: ${s.last ? `resuming from ${s.last}` : 'no shared snapshot: starting with a base'}${s.repair ? ` (repairing ${s.repair.length} interrupted extents)` : ''}`,
      )
      states.push(s)
    }
    const rounds = historyFromJournal(history)
    let prediction: Prediction | undefined
    if (o.mode === 'run') {
      const c = await converge(ctx, states, rounds, {
        cutoverWhenConverged: o.cutoverWhenConverged,
        hookMs: measuredHooks(history),
      })
      prediction = c.prediction
    } else {
      const missing = states.filter((s) => s.last === null).map((s) => s.pair.name)
      if (missing.length > 0) {
        throw new SnapferryError(
          'STATE_MISMATCH',
          `cannot cut over: ${missing.join(', ')} ha${missing.length === 1 ? 's' : 've'} no copy on the destination yet`,
          {
            hint: `run \`snapferry run ${cfg.file}\` first`,
          },
        )
      }
      prediction = lastPrediction(history)
    }
    // converge() returns only when it is time to cut over (converged, stall policy, or operator request).
    const c = await runCutover(ctx, states, prediction ?? null)
    await journal.append({ type: 'run-finished', exitCode: c.result.status === 'ok' ? 0 : 1 })
    return { cutover: c.result, prediction, rounds: rounds.length }
  } catch (e) {
    const err = o.signal.aborted
      ? new SnapferryError('ABORTED', 'the run was interrupted', { cause: e })
      : asSnapferryError(e)
    await journal
      .append({ type: 'phase', phase: o.signal.aborted ? 'aborted' : 'failed', detail: err.message })
      .catch(() => {})
    await journal.append({ type: 'run-finished', exitCode: 1, error: err.toJSON() }).catch(() => {})
    throw err
  } finally {
    await settlePruning(states)
    await volumes?.close()
    await openstack?.close()
    await journal.close()
    await release()
  }
}

/** Hook durations measured by the last cutover attempt, for the predictor. */
export function measuredHooks(history: readonly JournalEntry[]): {
  before: number | undefined
  after: number | undefined
} {
  const last = [...history].reverse().find((e) => e.type === 'cutover-finished')
  if (last?.type !== 'cutover-finished') return { before: undefined, after: undefined }
  const sum = (prefix: string) => {
    const steps = last.result.steps.filter((s) => s.name.startsWith(prefix) && s.status === 'ok')
    return steps.length > 0 ? steps.reduce((n, s) => n + s.durationMs, 0) : undefined
  }
  return { before: sum('before:'), after: sum('after:') }
}

function lastPrediction(history: readonly JournalEntry[]): Prediction | undefined {
  const p = [...history].reverse().find((e) => e.type === 'prediction')
  return p?.type === 'prediction' ? p.prediction : undefined
}
