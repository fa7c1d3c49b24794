/** snapferry's exit statuses (docs/CLI.md). Stable: scripts depend on them. */
import type { ErrorCode } from '../errors/error-codes.js'
import { isSnapferryError } from '../errors/snapferry-error.js'

export const EXIT = {
  OK: 0,
  FAILED: 1,
  /** Bad command line or invalid pipeline. */
  USAGE: 2,
  /** Deltas did not converge under the target downtime and the pipeline says fail. */
  NOT_CONVERGED: 3,
  /** Cutover failed before promotion; rollback hooks ran; the source is as it was. */
  ROLLED_BACK: 4,
  /** Cutover failed while promoting the destination; nothing was rolled back: the operator decides. */
  CUTOVER_FAILED: 5,
  /** Another run of this pipeline holds the lock. */
  LOCKED: 6,
  /** Interrupted (SIGINT/SIGTERM); the next run resumes. */
  INTERRUPTED: 130,
} as const

export const EXIT_HELP = `
Exit status:
  0    success
  1    failure (the message says what and what to do; the next run resumes)
  2    bad command line or invalid pipeline
  3    not converging under the target downtime (onStall: fail / maxRounds)
  4    cutover failed before promotion; rollback hooks ran, the source is as it was
  5    cutover failed while promoting the destination; nothing rolled back
  6    another run of this pipeline holds its lock
  130  interrupted; run again to resume`

const BY_CODE: Partial<Record<ErrorCode, number>> = {
  CONFIG_NOT_FOUND: EXIT.USAGE,
  CONFIG_INVALID: EXIT.USAGE,
  CONFIG_YAML_SYNTAX: EXIT.USAGE,
  OPENSTACK_CONFIG: EXIT.USAGE,
  CONVERGENCE_STALLED: EXIT.NOT_CONVERGED,
  MAX_ROUNDS_REACHED: EXIT.NOT_CONVERGED,
  PIPELINE_LOCKED: EXIT.LOCKED,
  ABORTED: EXIT.INTERRUPTED,
}

export function exitCodeFor(e: unknown): number {
  return isSnapferryError(e) ? (BY_CODE[e.code] ?? EXIT.FAILED) : EXIT.FAILED
}
