/** Map rbd's exit status and stderr to snapferry's errors, once, with the image named and a fix. */
import type { ErrorCode } from '../../errors/error-codes.js'
import { SnapferryError } from '../../errors/snapferry-error.js'

interface Rule {
  readonly match: RegExp
  readonly code: ErrorCode
  readonly hint: string
  readonly transient?: boolean
}

/** First match wins: specific errno and messages before generic ones (an open can fail with ETIMEDOUT). */
const RULES: readonly Rule[] = [
  {
    match: /start snapshot '([^']*)' does not exist/,
    code: 'SNAPSHOT_NOT_FOUND',
    hint: 'the destination lost the snapshot this delta builds on: run again so snapferry reconciles',
  },
  {
    match: /end snapshot '([^']*)' already exists/,
    code: 'SNAPSHOT_EXISTS',
    hint: 'this delta was applied already; run again to resume from it',
  },
  {
    match: /couldn't connect to the cluster|Connection timed out|\(110\)|timed out/i,
    code: 'CLUSTER_UNREACHABLE',
    hint: 'check the conf/keyring/id of this cluster and that its monitors and OSDs are reachable from the agent host',
    transient: true,
  },
  {
    match: /No space left|\(28\)|Disk quota exceeded|\(122\)|pool is full|\bFULL\b/,
    code: 'VOLUME_NO_SPACE',
    hint: 'the pool is full or over quota: free space or raise the quota, then run again (completed rounds are kept)',
  },
  {
    match: /Permission denied|\(13\)|\(1\) Operation not permitted/,
    code: 'RBD_CLI_FAILED',
    hint: 'the Ceph user lacks caps on this pool: check the keyring and `ceph auth get client.<id>`',
  },
  {
    match: /\(2\) No such file or directory|image does not exist/,
    code: 'VOLUME_NOT_FOUND',
    hint: 'check pool, namespace and image in the pipeline, and that the cluster is the right one',
  },
  { match: /already exists|\(17\) File exists/, code: 'VOLUME_EXISTS', hint: 'the image exists already' },
  {
    match: /invalid or unexpected diff banner|\(74\)|\(22\) Invalid argument/,
    code: 'RBD_CLI_FAILED',
    hint: 'rbd rejected the request or the delta stream; the message says which',
  },
]

export function rbdError(
  what: string,
  argv: readonly string[],
  exitCode: number | null,
  stderr: string,
  name = 'rbd',
): SnapferryError {
  const lines = stderr
    .split('\n')
    .map((l) => l.replace(/^\S+T\S+\s+\S+\s+-?\d+\s+/, '').trim())
    .filter((l) => l && !/^(Exporting|Importing|Removing)[^:]*: \d+% complete/.test(l))
  const last = lines.slice(-3).join('; ')
  return classified(what, `${name} exited with status ${exitCode}${last ? `: ${last}` : ''}`, stderr, {
    argv: redactArgv(argv),
    exitCode,
    stderr: stderr.slice(-2000),
  })
}

/** A failed call of the librbd session: librbd's errno and text, classified by the same rules. */
export function librbdError(what: string, errno: number, text: string): SnapferryError {
  return classified(what, `librbd: ${text}`, text, { errno })
}

function classified(
  what: string,
  summary: string,
  text: string,
  details: Record<string, unknown>,
): SnapferryError {
  const rule = RULES.find((r) => r.match.test(text))
  return new SnapferryError(rule?.code ?? 'RBD_CLI_FAILED', `${what}: ${summary}`, {
    hint: rule?.hint ?? 'see the rbd output in the message and the log',
    transient: rule?.transient ?? false,
    details,
  })
}

/** Keys never appear in argv (snapferry passes keyring paths), but keep --key values out of logs anyway. */
function redactArgv(argv: readonly string[]): string[] {
  return argv.map((a, i) => (argv[i - 1] === '--key' ? '[redacted]' : a))
}
