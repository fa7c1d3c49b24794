/**
 * Warm librbd exporters: a round's export should not wait for a Python start and a cluster connection.
 * Each export of a connection leaves one spare exporter behind (librbd-export-py.ts: connected, waiting
 * for its job on stdin), started once the export is done, so it is ready before the next round's
 * snapshot is. Beside a live writer on the downtime bench the delta's first bytes reached the
 * destination 254 ms into a round, and the time every round spends before its first byte is a cost the
 * convergence pays several times over (docs/BENCHMARKS.md).
 *
 * A spare that died (its cluster went away), or waited longer than SPARE_MAX_IDLE_MS, is not used; a
 * new process starts instead, which then fails or succeeds as it would have without spares. An idle
 * spare does not keep the agent alive, and exits when its stdin closes (the agent ended).
 */
import { LIBRBD_EXPORT_PY } from './librbd-export-py.js'
import { PYTHON, sessionArgs } from './librbd-session.js'
import { type ProcessNaming, type RbdConnection, type StreamingRbd, streamingProcess } from './rbd-cli.js'

/** A spare idle this long is replaced by a new process: a connection that old is not trusted to be warm. */
export const SPARE_MAX_IDLE_MS = 120_000

interface Spare {
  readonly p: StreamingRbd
  readonly naming: ProcessNaming
  readonly since: number
}

const spares = new Map<string, Spare>()

/**
 * An exporter for one job on this connection, the spare if a usable one waits: the job (one JSON line)
 * is written to its stdin, and its errors are named by `naming`.
 */
export function librbdExporter(c: RbdConnection, job: object, naming: ProcessNaming): StreamingRbd {
  const key = JSON.stringify(sessionArgs(c))
  const spare = spares.get(key)
  spares.delete(key)
  let got: Spare
  if (spare && alive(spare.p) && performance.now() - spare.since < SPARE_MAX_IDLE_MS) {
    got = spare
    Object.assign(got.naming, naming)
    setReferenced(got.p, true)
  } else {
    if (spare) spare.p.stdin?.end()
    got = start(c, naming)
  }
  got.p.stdin?.end(`${JSON.stringify(job)}\n`)
  // The next round's exporter connects after this one is done, not while it competes for the CPU.
  got.p.done.then(
    () => refill(key, c),
    () => refill(key, c),
  )
  return got.p
}

/** The waiting spare's process id, for tests. */
export function spareExporterPid(c: RbdConnection): number | undefined {
  return spares.get(JSON.stringify(sessionArgs(c)))?.p.pid
}

function refill(key: string, c: RbdConnection): void {
  const old = spares.get(key)
  if (old && alive(old.p)) return
  const s = start(c, { what: 'a spare librbd exporter', name: 'the librbd exporter (python3-rbd)', argv: [] })
  setReferenced(s.p, false)
  spares.set(key, s)
  // A spare that fails is dropped; the next export starts its own and reports the failure.
  s.p.on('close', () => {
    if (spares.get(key) === s) spares.delete(key)
  })
}

function start(c: RbdConnection, naming: ProcessNaming): Spare {
  const n = { ...naming }
  const p = streamingProcess(
    PYTHON,
    ['-c', LIBRBD_EXPORT_PY, JSON.stringify(sessionArgs(c))],
    { stdin: true, stdout: true },
    n,
  )
  // Writing the job to (or closing) a process that already failed: it says why through `done`.
  p.stdin?.on('error', () => {})
  return { p, naming: n, since: performance.now() }
}

function alive(p: StreamingRbd): boolean {
  return p.exitCode === null && p.signalCode === null
}

/** An idle spare must not keep the process alive; one doing a job must. */
function setReferenced(p: StreamingRbd, on: boolean): void {
  for (const h of [p, p.stdin, p.stdout, p.stderr] as unknown as ({ ref(): void; unref(): void } | null)[]) {
    if (on) h?.ref()
    else h?.unref()
  }
}
