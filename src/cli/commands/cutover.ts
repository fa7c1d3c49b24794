/** snapferry cutover PIPELINE — cut over now: ask a holding run to do it, or do it here. --dry-run shows the steps. */
import type { Command } from 'commander'
import { loadPipelineFile } from '../../config/load-pipeline.js'
import {
  isOpenStackStep,
  type PipelineConfig,
  type RunbookEntryConfig,
} from '../../config/pipeline-config.js'
import { formatDuration } from '../../config/units.js'
import { requestCutover } from '../../engine/requests.js'
import { describeAction } from '../../openstack/openstack-steps.js'
import { readJournal } from '../../state/journal.js'
import { holderAlive, readLock } from '../../state/pipeline-lock.js'
import { fail } from '../cli-context.js'
import { EXIT, EXIT_HELP } from '../exit-codes.js'
import { type RunOptions, runRun } from './run.js'

export async function runCutoverCommand(
  file: string,
  opts: RunOptions & { dryRun?: boolean },
): Promise<number> {
  try {
    const cfg = await loadPipelineFile(file)
    if (opts.dryRun) {
      process.stdout.write(describeRunbook(cfg))
      return EXIT.OK
    }
    const lock = await readLock(cfg.stateDir)
    if (lock && holderAlive(lock)) return await askRunningProcess(cfg, lock.pid)
  } catch (e) {
    return fail(e)
  }
  return runRun(file, opts, 'cutover')
}

/** A run is holding the copy warm: leave it a request and follow the journal until it reports the cutover. */
async function askRunningProcess(cfg: PipelineConfig, pid: number): Promise<number> {
  const seen = (await readJournal(cfg.stateDir)).at(-1)?.seq ?? 0
  await requestCutover(cfg.stateDir)
  process.stdout.write(`asked the running snapferry (pid ${pid}) to cut over; following its journal\n`)
  for (;;) {
    await new Promise((r) => setTimeout(r, 500))
    const fresh = (await readJournal(cfg.stateDir)).filter((e) => e.seq > seen)
    const done = fresh.find((e) => e.type === 'cutover-finished')
    if (done?.type === 'cutover-finished') {
      const r = done.result
      process.stdout.write(`cutover ${r.status}: downtime ${formatDuration(r.downtimeMs)}\n`)
      return r.status === 'ok' ? EXIT.OK : r.status === 'rolled-back' ? EXIT.ROLLED_BACK : EXIT.CUTOVER_FAILED
    }
    const finished = fresh.find((e) => e.type === 'run-finished')
    if (finished?.type === 'run-finished') {
      process.stderr.write(
        `the run ended before cutting over${finished.error ? `: ${finished.error.message}` : ''}\n`,
      )
      return EXIT.FAILED
    }
  }
}

export function describeRunbook(cfg: PipelineConfig): string {
  const hook = (phase: string, h: RunbookEntryConfig) =>
    isOpenStackStep(h)
      ? `  ${phase}:${h.name}: ${describeAction(h.openstack)}`
      : `  ${phase}:${h.name}: ${typeof h.run === 'string' ? `sh -c ${JSON.stringify(h.run)}` : JSON.stringify(h.run)} (timeout ${formatDuration(h.timeout)})`
  const lines = [`cutover runbook of pipeline '${cfg.name}' (dry run: nothing is executed)`]
  lines.push('  -- downtime starts --')
  for (const h of cfg.cutover.before) lines.push(hook('before', h))
  lines.push(`  final-delta: snapshot ${cfg.volumes.map((v) => v.name).join(', ')} and ship the last delta`)
  const verifyText = {
    full: '  verify: sha256 of every byte on both sides must match',
    records:
      '  verify: records — block-hash records (file ↔ file, same block size), the verified delta chain and final snapshot (rbd/cinder ↔ rbd/cinder); every byte otherwise',
    none: '  verify: skipped (verify: none)',
  }[cfg.cutover.verify]
  lines.push(verifyText)
  for (const h of cfg.cutover.after) lines.push(hook('after', h))
  lines.push('  -- downtime ends --')
  const typed = [...cfg.cutover.before, ...cfg.cutover.after].some(isOpenStackStep)
  lines.push(
    typed
      ? '  on failure (before any shell after hook ran), the completed OpenStack steps are undone in reverse order, then these run:'
      : '  on failure before the after hooks, these run and the source stays as it was:',
  )
  for (const h of cfg.cutover.rollback) lines.push(hook('rollback', h))
  if (cfg.cutover.rollback.length === 0) lines.push('  (no rollback hooks)')
  return `${lines.join('\n')}\n`
}

export function cutoverCommand(program: Command): void {
  program
    .command('cutover')
    .description(
      'cut over now: stop the workload (before hooks), ship the final delta, verify, promote (after hooks)',
    )
    .argument('<pipeline>', 'pipeline YAML file')
    .option('--dry-run', 'print the runbook without running anything')
    .option('--repair-destination', 're-send extents that something else changed on the destination')
    .addHelpText('after', EXIT_HELP)
    .action(async (file: string, opts: RunOptions & { dryRun?: boolean }, cmd: Command) => {
      process.exitCode = await runCutoverCommand(file, { ...cmd.optsWithGlobals(), ...opts })
    })
}
