/** snapferry status PIPELINE [--json] — phase, rounds, last prediction, cutover result; from the journal. */
import type { Command } from 'commander'
import { loadPipelineFile } from '../../config/load-pipeline.js'
import { formatBytes, formatDuration } from '../../config/units.js'
import { readJournal } from '../../state/journal.js'
import { holderAlive, readLock } from '../../state/pipeline-lock.js'
import { type StatusSummary, summarize } from '../../state/run-summary.js'
import { fail } from '../cli-context.js'
import { EXIT, EXIT_HELP } from '../exit-codes.js'

export async function runStatus(file: string, opts: { json?: boolean }): Promise<number> {
  try {
    const cfg = await loadPipelineFile(file)
    const lock = await readLock(cfg.stateDir)
    const s = summarize(
      cfg.name,
      cfg.volumes.map((v) => v.name),
      await readJournal(cfg.stateDir),
      lock && holderAlive(lock) ? lock : null,
    )
    process.stdout.write(opts.json ? `${JSON.stringify(s, null, 2)}\n` : render(s))
    return EXIT.OK
  } catch (e) {
    return fail(e)
  }
}

function render(s: StatusSummary): string {
  const out = [
    `pipeline ${s.pipeline}: ${s.phase}${s.running ? ` (running: pid ${s.running.pid} on ${s.running.host} since ${s.running.startedAt})` : ''}`,
  ]
  for (const v of s.volumes)
    out.push(`  volume ${v.name}: ${v.rounds} rounds, last snapshot ${v.lastSnapshot ?? '(none)'}`)
  if (s.rounds.length > 0) {
    out.push('  round  kind   started                   changed     on wire     extents  duration')
    for (const r of s.rounds.slice(-20)) {
      out.push(
        `  ${String(r.round).padStart(5)}  ${r.kind.padEnd(5)}  ${r.startedAt.padEnd(24)}  ${formatBytes(r.changedBytes).padStart(10)}  ${formatBytes(r.streamBytes).padStart(10)}  ${String(r.extents).padStart(7)}  ${formatDuration(r.durationMs)}`,
      )
    }
  }
  if (s.lastPrediction)
    out.push(
      `  last prediction (round ${s.lastPrediction.round}): window ${formatDuration(s.lastPrediction.windowMs)} → ${s.lastPrediction.decision}: ${s.lastPrediction.reason}`,
    )
  if (s.cutover) {
    out.push(
      `  cutover: ${s.cutover.status}, downtime ${formatDuration(s.cutover.downtimeMs)}${s.cutover.predictedMs === null ? '' : ` (predicted ${formatDuration(s.cutover.predictedMs)})`}`,
    )
    for (const st of s.cutover.steps)
      out.push(
        `    ${st.status.padEnd(7)} ${st.name} ${st.status === 'not-run' ? '' : formatDuration(st.durationMs)}`,
      )
  }
  if (s.lastError) out.push(`  last error ${s.lastError.code}: ${s.lastError.message}`)
  return `${out.join('\n')}\n`
}

export function statusCommand(program: Command): void {
  program
    .command('status')
    .description(
      'show the phase, the rounds, the last prediction and the cutover result (read-only, works while a run is going)',
    )
    .argument('<pipeline>', 'pipeline YAML file')
    .option('--json', 'machine-readable output (schema: docs/CLI.md)')
    .addHelpText('after', EXIT_HELP)
    .action(async (file: string, opts: { json?: boolean }) => {
      process.exitCode = await runStatus(file, opts)
    })
}
