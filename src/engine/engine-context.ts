/** What every engine step needs: config, journal, logs, output, the shared rate limiter, the abort signal. */
import type { PipelineConfig } from '../config/pipeline-config.js'
import type { Logger } from '../logging/logger.js'
import type { OpenStackRun } from '../openstack/openstack-run.js'
import type { RateLimiter } from '../replication/rate-limiter.js'
import type { Journal } from '../state/journal.js'
import type { JournalEntry } from '../state/journal-entries.js'
import type { ReconcileOptions } from './reconcile.js'
import type { RunReporter } from './run-reporter.js'

export interface EngineContext {
  readonly cfg: PipelineConfig
  readonly journal: Journal
  /** The journal as it was when this run started. */
  readonly history: readonly JournalEntry[]
  readonly log: Logger
  readonly reporter: RunReporter
  readonly limiter: RateLimiter | undefined
  readonly reconcile: ReconcileOptions
  readonly signal: AbortSignal
  /** The cloud behind `cinder` volumes and typed OpenStack steps, when the pipeline has `openstack:`. */
  readonly openstack?: OpenStackRun | undefined
}
