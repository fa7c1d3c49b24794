/**
 * The cutover runbook: ordered steps with a result each (ok / failed / not-run), rollback on failure
 * before the destination is promoted, and the downtime actually measured. Steps are data; what each
 * does is a callback, so the runbook logic is tested without volumes (docs/CUTOVER.md).
 */
import { asSnapferryError, type SerializedError } from '../errors/snapferry-error.js'
import type { Journal } from '../state/journal.js'

/** before: stop the workload (downtime starts); transfer/verify: final delta; after: promote and start. */
export type StepPhase = 'before' | 'transfer' | 'verify' | 'after'

export interface RunbookStep {
  readonly name: string
  readonly kind: 'hook' | 'final-round' | 'verify'
  readonly phase: StepPhase
  run(signal?: AbortSignal): Promise<{ readonly output?: string }>
}

export interface StepResult {
  readonly name: string
  readonly kind: RunbookStep['kind'] | 'rollback-hook'
  readonly phase: StepPhase | 'rollback'
  readonly status: 'ok' | 'failed' | 'not-run'
  readonly durationMs: number
  readonly output?: string | undefined
  readonly error?: SerializedError | undefined
}

export interface RunbookResult {
  /** ok: promoted; rolled-back: failed before promotion, rollback ran; failed: failed during promotion. */
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
  const start = performance.now()
  let failed: { step: RunbookStep; index: number } | undefined
  for (let i = 0; i < steps.length; i++) {
    const step = steps[i] as RunbookStep
    const r = await runStep(step, step.kind, step.phase, journal, signal)
    results.push(r)
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
    if (failed.step.phase === 'after') {
      // Promotion began: restarting the source now could run the workload twice. The operator decides.
      status = 'failed'
    } else {
      status = 'rolled-back'
      for (const s of rollbackSteps)
        rollback.push(await runStep(s, 'rollback-hook', 'rollback', journal, undefined))
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
): Promise<StepResult> {
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
    })
    return { name: step.name, kind, phase, status: 'ok', durationMs, output: out.output }
  } catch (e) {
    const durationMs = performance.now() - t0
    const err = asSnapferryError(e).toJSON()
    const output = (e as { output?: string }).output
    await journal?.append({
      type: 'cutover-step',
      step: step.name,
      kind,
      status: 'failed',
      durationMs,
      error: err,
      ...(output ? { output } : {}),
    })
    return { name: step.name, kind, phase, status: 'failed', durationMs, output, error: err }
  }
}
