/**
 * The cutover runbook: ordered steps with a result each (ok / failed / not-run), rollback on failure
 * before the destination is promoted, and the downtime actually measured. Steps are data; what each
 * does is a callback, so the runbook logic is tested without volumes (docs/CUTOVER.md).
 */
import { asSnapferryError, type SerializedError } from '../errors/snapferry-error.js'
import type { Journal } from '../state/journal.js'

/** before: stop the workload (downtime starts); transfer/verify: final delta; after: promote and start. */
export type StepPhase = 'before' | 'transfer' | 'verify' | 'after'

export interface StepOutcome {
  readonly output?: string | undefined
  /** What puts back what this step did (typed OpenStack steps); run in reverse order on rollback. */
  readonly undo?: RunbookStep | undefined
  /** The API calls the step made, secrets redacted. */
  readonly requests?: readonly Record<string, unknown>[] | undefined
}

export interface RunbookStep {
  readonly name: string
  readonly kind: 'hook' | 'openstack' | 'final-round' | 'verify'
  readonly phase: StepPhase
  run(signal?: AbortSignal): Promise<StepOutcome>
}

export interface StepResult {
  readonly name: string
  readonly kind: RunbookStep['kind'] | 'rollback-hook' | 'undo'
  readonly phase: StepPhase | 'rollback'
  readonly status: 'ok' | 'failed' | 'not-run'
  readonly durationMs: number
  readonly output?: string | undefined
  readonly error?: SerializedError | undefined
  readonly requests?: readonly Record<string, unknown>[] | undefined
}

export interface RunbookResult {
  /**
   * ok: promoted; rolled-back: failed before promotion (or during a promotion made only of undoable
   * steps), completed steps undone and rollback hooks run; failed: failed during promotion.
   */
  readonly status: 'ok' | 'rolled-back' | 'failed'
  readonly steps: readonly StepResult[]
  readonly rollback: readonly StepResult[]
  /** From the first step that stops the workload to the end of the last step that brings it back. */
  readonly downtimeMs: number
  readonly failedStep: string | undefined
}

export async function runRunbook(
  steps: readonly RunbookStep[],
  rollbackSteps: readonly RunbookStep[],
  journal: Journal | undefined,
  signal?: AbortSignal,
): Promise<RunbookResult> {
  const results: StepResult[] = []
  const undos: (RunbookStep | undefined)[] = []
  const start = performance.now()
  let failed: { step: RunbookStep; index: number } | undefined
  for (let i = 0; i < steps.length; i++) {
    const step = steps[i] as RunbookStep
    const { result: r, undo } = await runStep(step, step.kind, step.phase, journal, signal)
    results.push(r)
    undos.push(undo)
    if (r.status === 'failed') {
      failed = { step, index: i }
      break
    }
  }
  for (let i = results.length; i < steps.length; i++) {
    const s = steps[i] as RunbookStep
    results.push({ name: s.name, kind: s.kind, phase: s.phase, status: 'not-run', durationMs: 0 })
  }
  const rollback: StepResult[] = []
  let status: RunbookResult['status'] = 'ok'
  if (failed) {
    // Promotion began: if a promotion step that ran cannot be undone (a shell hook, even a failed one),
    // restarting the source could run the workload twice. The operator decides. Typed steps return
    // their undo (or changed nothing), and one that fails cleans up after itself.
    const irreversible = steps
      .slice(0, failed.index + 1)
      .filter((s) => s.phase === 'after' && s.kind !== 'openstack')
    if (failed.step.phase === 'after' && irreversible.length > 0) {
      status = 'failed'
    } else {
      status = 'rolled-back'
      for (let i = undos.length - 1; i >= 0; i--) {
        const u = undos[i]
        if (u) rollback.push((await runStep(u, 'undo', 'rollback', journal, undefined)).result)
      }
      for (const s of rollbackSteps)
        rollback.push((await runStep(s, 'rollback-hook', 'rollback', journal, undefined)).result)
    }
  }
  return {
    status,
    steps: results,
    rollback,
    downtimeMs: performance.now() - start,
    failedStep: failed?.step.name,
  }
}

async function runStep(
  step: RunbookStep,
  kind: StepResult['kind'],
  phase: StepResult['phase'],
  journal: Journal | undefined,
  signal: AbortSignal | undefined,
): Promise<{ result: StepResult; undo: RunbookStep | undefined }> {
  await journal?.append({ type: 'cutover-step', step: step.name, kind, status: 'started' })
  const t0 = performance.now()
  try {
    const out = await step.run(signal)
    const durationMs = performance.now() - t0
    await journal?.append({
      type: 'cutover-step',
      step: step.name,
      kind,
      status: 'ok',
      durationMs,
      ...(out.output ? { output: out.output } : {}),
      ...(out.requests ? { requests: out.requests } : {}),
    })
    return {
      result: {
        name: step.name,
        kind,
        phase,
        status: 'ok',
        durationMs,
        output: out.output,
        requests: out.requests,
      },
      undo: out.undo,
    }
  } catch (e) {
    const durationMs = performance.now() - t0
    const err = asSnapferryError(e).toJSON()
    const output = (e as { output?: string }).output
    const calls = (e as { calls?: { method: string; url: string; status: number | null }[] }).calls
    const requests = calls?.map((c) => ({ method: c.method, url: c.url, status: c.status }))
    await journal?.append({
      type: 'cutover-step',
      step: step.name,
      kind,
      status: 'failed',
      durationMs,
      error: err,
      ...(output ? { output } : {}),
      ...(requests ? { requests } : {}),
    })
    return {
      result: { name: step.name, kind, phase, status: 'failed', durationMs, output, error: err, requests },
      undo: undefined,
    }
  }
}
