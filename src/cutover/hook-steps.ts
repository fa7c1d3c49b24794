/** Turn the pipeline's hooks into runbook steps, with the environment every hook gets. */
import { endpointLocation } from '../config/endpoint-location.js'
import {
  isOpenStackStep,
  type OpenStackStepConfig,
  type PipelineConfig,
  type RunbookEntryConfig,
} from '../config/pipeline-config.js'
import { SnapferryError } from '../errors/snapferry-error.js'
import { runHook } from './hook-runner.js'
import type { RunbookStep, StepPhase } from './runbook.js'

/** SNAPFERRY_* variables: pipeline, phase, volumes and their paths, the final snapshot when known. */
export function hookEnv(
  cfg: PipelineConfig,
  phase: string,
  hook: string,
  finalSnapshot: () => Record<string, string>,
): Record<string, string> {
  const env: Record<string, string> = {
    SNAPFERRY_PIPELINE: cfg.name,
    SNAPFERRY_PHASE: phase,
    SNAPFERRY_HOOK: hook,
    SNAPFERRY_STATE_DIR: cfg.stateDir,
    SNAPFERRY_VOLUMES: cfg.volumes.map((v) => v.name).join(' '),
  }
  const snaps = finalSnapshot()
  for (const v of cfg.volumes) {
    const key = v.name.toUpperCase().replace(/[^A-Z0-9]/g, '_')
    env[`SNAPFERRY_VOLUME_${key}_SOURCE`] = endpointLocation(v.source)
    env[`SNAPFERRY_VOLUME_${key}_DESTINATION`] = endpointLocation(v.destination)
    const s = snaps[v.name]
    if (s) env[`SNAPFERRY_VOLUME_${key}_SNAPSHOT`] = s
  }
  return env
}

/** Builds a typed OpenStack step (src/openstack/openstack-steps.ts), when the pipeline has `openstack:`. */
export type TypedStepFactory = (entry: OpenStackStepConfig, phase: StepPhase, prefix: string) => RunbookStep

export function hookSteps(
  cfg: PipelineConfig,
  hooks: readonly RunbookEntryConfig[],
  phase: Exclude<StepPhase, 'transfer' | 'verify'> | 'rollback',
  finalSnapshot: () => Record<string, string>,
  typed?: TypedStepFactory,
): RunbookStep[] {
  return hooks.map((h): RunbookStep => {
    if (!isOpenStackStep(h)) return shellStep(cfg, h, phase, finalSnapshot)
    if (!typed) {
      throw new SnapferryError(
        'CONFIG_INVALID',
        `${cfg.file}: step '${h.name}' calls OpenStack but the pipeline has no \`openstack:\` section`,
        {
          hint: 'add `openstack: { cloud: …, regions: … }` (docs/OPENSTACK.md)',
        },
      )
    }
    return typed(h, phase === 'rollback' ? 'before' : phase, phase)
  })
}

function shellStep(
  cfg: PipelineConfig,
  h: Exclude<RunbookEntryConfig, OpenStackStepConfig>,
  phase: Exclude<StepPhase, 'transfer' | 'verify'> | 'rollback',
  finalSnapshot: () => Record<string, string>,
): RunbookStep {
  return {
    name: `${phase}:${h.name}`,
    kind: 'hook' as const,
    phase: phase === 'rollback' ? 'before' : phase,
    async run(signal?: AbortSignal) {
      const r = await runHook(h, hookEnv(cfg, phase, h.name, finalSnapshot), signal)
      if (r.status === 'ok') return { output: r.output }
      const why = r.timedOut
        ? `timed out after ${h.timeout} ms`
        : r.exitCode === null
          ? `was killed (${r.signal})`
          : `exited with status ${r.exitCode}`
      const err = new SnapferryError(
        r.timedOut ? 'HOOK_TIMEOUT' : 'HOOK_FAILED',
        `${phase} hook '${h.name}' ${why}`,
        {
          hint: r.timedOut
            ? 'raise the hook timeout or make the command finish sooner'
            : `its output: ${r.output.trim().slice(-300) || '(none)'}`,
          details: { hook: h.name, phase, exitCode: r.exitCode },
        },
      )
      throw Object.assign(err, { output: r.output })
    },
  }
}
