/** What every command shares: loading the pipeline, its log file, the terminal reporter, Ctrl-C handling. */
import path from 'node:path'
import { loadPipelineFile } from '../config/load-pipeline.js'
import type { PipelineConfig } from '../config/pipeline-config.js'
import { streamReporter } from '../engine/run-reporter.js'
import { formatError } from '../errors/snapferry-error.js'
import { fileLogger, type Logger } from '../logging/logger.js'
import { exitCodeFor } from './exit-codes.js'

export interface GlobalOptions {
  readonly logFile?: string
  readonly logLevel?: string
}

export async function loadWithLog(
  file: string,
  g: GlobalOptions,
): Promise<{ cfg: PipelineConfig; log: Logger }> {
  const cfg = await loadPipelineFile(file)
  const log = fileLogger(g.logFile ?? path.join(cfg.stateDir, 'snapferry.log'), g.logLevel ?? 'debug')
  return { cfg, log }
}

export const reporter = () => streamReporter(process.stdout)

/** An AbortSignal fired by the first SIGINT/SIGTERM; a second one exits at once. */
export function interruptSignal(): AbortSignal {
  const ac = new AbortController()
  let count = 0
  const on = (sig: string) => {
    count++
    if (count > 1) process.exit(130)
    process.stderr.write(`\n${sig}: stopping after cleaning up (again to exit at once)\n`)
    ac.abort(new Error(sig))
  }
  process.once('SIGINT', () => on('SIGINT'))
  process.once('SIGTERM', () => on('SIGTERM'))
  return ac.signal
}

/** Print a failure the way operators read it, and return its exit status. */
export function fail(e: unknown): number {
  process.stderr.write(`${formatError(e)}\n`)
  return exitCodeFor(e)
}
