/** snapferry run PIPELINE — base, delta rounds until converged, then cutover or hold (as the pipeline says). */
import type { Command } from 'commander'
import { formatDuration } from '../../config/units.js'
import { runPipeline } from '../../engine/run-pipeline.js'
import { fail, type GlobalOptions, interruptSignal, loadWithLog, reporter } from '../cli-context.js'
import { EXIT, EXIT_HELP } from '../exit-codes.js'

export interface RunOptions extends GlobalOptions {
  readonly cutover?: boolean
  readonly repairDestination?: boolean
  readonly overwriteDestination?: boolean
}

export async function runRun(
  file: string,
  opts: RunOptions,
  mode: 'run' | 'cutover' = 'run',
): Promise<number> {
  try {
    const { cfg, log } = await loadWithLog(file, opts)
    const out = reporter()
    const r = await runPipeline(cfg, {
      mode,
      cutoverWhenConverged: opts.cutover === true,
      repairDestination: opts.repairDestination === true,
      overwriteDestination: opts.overwriteDestination === true,
      reporter: out,
      log,
      signal: interruptSignal(),
    })
    const predicted = r.prediction ? `, predicted ${formatDuration(r.prediction.windowMs)}` : ''
    if (r.cutover.status === 'ok') {
      out.line(`cutover done: downtime ${formatDuration(r.cutover.downtimeMs)}${predicted}`)
      return EXIT.OK
    }
    out.line(
      `cutover ${r.cutover.status === 'rolled-back' ? 'failed and was rolled back' : 'FAILED during promotion'} at ${r.cutover.failedStep}; downtime ${formatDuration(r.cutover.downtimeMs)}`,
    )
    return r.cutover.status === 'rolled-back' ? EXIT.ROLLED_BACK : EXIT.CUTOVER_FAILED
  } catch (e) {
    return fail(e)
  }
}

export function runCommand(program: Command): void {
  program
    .command('run')
    .description(
      'ship the base, then delta rounds until the predicted cutover window fits targetDowntime; then cut over or hold warm',
    )
    .argument('<pipeline>', 'pipeline YAML file')
    .option('--cutover', 'cut over once converged, even if the pipeline says whenConverged: hold')
    .option(
      '--repair-destination',
      're-send extents that something else changed on the destination (instead of refusing)',
    )
    .option(
      '--overwrite-destination',
      'let the base replace a destination that holds data snapferry did not write',
    )
    .addHelpText('after', EXIT_HELP)
    .action(async (file: string, opts: RunOptions, cmd: Command) => {
      process.exitCode = await runRun(file, { ...cmd.optsWithGlobals(), ...opts })
    })
}
