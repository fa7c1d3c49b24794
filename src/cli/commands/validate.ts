/** snapferry validate FILE… — check pipelines without touching anything. */
import type { Command } from 'commander'
import { loadPipelineFile } from '../../config/load-pipeline.js'
import { formatDuration, formatRate } from '../../config/units.js'
import { fail } from '../cli-context.js'
import { EXIT, EXIT_HELP } from '../exit-codes.js'

export async function runValidate(files: readonly string[]): Promise<number> {
  let status: number = EXIT.OK
  for (const file of files) {
    try {
      const cfg = await loadPipelineFile(file)
      const c = cfg.convergence
      process.stdout.write(
        `ok: ${file}: pipeline '${cfg.name}', ${cfg.volumes.length} volume${cfg.volumes.length === 1 ? '' : 's'} (${cfg.volumes.map((v) => `${v.name}: ${v.source.driver}→${v.destination.driver}`).join(', ')}); ` +
          `target downtime ${formatDuration(c.targetDowntime)}, bandwidth ${formatRate(cfg.transport.bandwidth)}\n`,
      )
    } catch (e) {
      status = fail(e)
    }
  }
  return status
}

export function validateCommand(program: Command): void {
  program
    .command('validate')
    .description('check pipeline files: syntax, schema, cross-field rules; prints where each problem is')
    .argument('<pipeline...>', 'pipeline YAML files')
    .addHelpText('after', EXIT_HELP)
    .action(async (files: string[]) => {
      process.exitCode = await runValidate(files)
    })
}
