/** One snapferry run of a downtime scenario: converge under the live writer, cut over, read back what it measured. */
import { readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import type { VolumeRoundStats } from '../../src/convergence/round-stats.js'
import { readJournal } from '../../src/state/journal.js'
import type { JournalEntry } from '../../src/state/journal-entries.js'
import { type RunContext, runInA } from './run-context.js'
import type { MethodRun, RoundPoint } from './scenario.js'
import { imageSha256 } from './workload.js'

/**
 * One snapferry run; its journal and its output (the controller's reasons per round) are kept in the
 * scenario's directory as `<keepAs>.journal.json` and `<keepAs>.out.txt`.
 */
/** Pipeline settings a bench run may change from the defaults below (ScenarioOptions says what each is). */
export interface SnapferryKnobs {
  readonly snapshotsKept?: number | undefined
  readonly compression?: string | undefined
  readonly settle?: boolean | undefined
}

export async function runSnapferry(
  ctx: RunContext,
  targetDowntime: string,
  keepAs: string,
  knobs: SnapferryKnobs = {},
): Promise<MethodRun> {
  const { snapshotsKept = 2, compression = 'auto', settle = true } = knobs
  const h = ctx.regions.hosts
  const cli = path.join(ctx.repoRoot, 'dist/src/cli/main.js')
  const agent = path.join(ctx.repoRoot, 'dist/agents/snapferry-agent.js')
  const stopWriter = path.join(ctx.repoRoot, 'bench/downtime/stop-writer.sh')
  const marker = path.join(ctx.dir, 'snapferry.started')
  const file = path.join(ctx.dir, 'snapferry.yaml')
  // SNAPFERRY_BENCH_CPU_PROF=DIR: V8 CPU profiles of the controller and both agents, for finding where a round's time goes.
  const profDir = process.env.SNAPFERRY_BENCH_CPU_PROF
  const prof = profDir ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : []
  await writeFile(
    file,
    `apiVersion: snapferry/v1
kind: Pipeline
name: downtime-bench
volumes:
  - name: vm
    source: { driver: rbd, pool: rbd, image: ${ctx.srcImage}, conf: ${ctx.regions.a.conf}, host: local }
    destination: { driver: rbd, pool: rbd, image: ${ctx.dstImage}, conf: ${ctx.regions.b.conf}, host: root@${h.ipB} }
stateDir: state
convergence:
  targetDowntime: ${targetDowntime}
  minRounds: 2
  maxRounds: 12
  roundInterval: 0s
  stallRounds: 3
  onStall: cutover
  whenConverged: cutover
  settle: ${settle}
cutover:
  before:
    - name: stop-vm
      run: [${stopWriter}, ${ctx.writer.pidFile}]
  after:
    - name: start-vm
      run: [bash, -c, 'date +%s.%N > "$0"', ${marker}]
  verify: records
snapshots: { keep: ${snapshotsKept} }
transport:
  compression: ${compression}
  ssh: { config: none, knownHosts: ${h.knownHosts}, identityFile: ${h.identity}, agentCommand: [${[process.execPath, ...prof, agent].join(', ')}] }
`,
  )
  const wire0 = await h.linkBytes()
  const t0 = Date.now()
  const r = await runInA(h, [process.execPath, ...prof, cli, 'run', file])
  const totalMs = Date.now() - t0
  const wireBytes = (await h.linkBytes()) - wire0
  await writeFile(path.join(ctx.dir, `${keepAs}.out.txt`), `${r.out}\n${r.err}`)
  if (r.code !== 0) throw new Error(`snapferry run exited ${r.code}:\n${r.err}\n${r.out}`)
  const journal = await readJournal(path.join(ctx.dir, 'state'))
  await writeFile(path.join(ctx.dir, `${keepAs}.journal.json`), JSON.stringify(journal))
  const stoppedAt = await ctx.writer.stoppedAt()
  const startedAt = Number((await readFile(marker, 'utf8')).trim()) * 1000
  const stats = journal.flatMap((e) => (e.type === 'round-completed' ? [e.stats] : []))
  const predictions = journal.flatMap((e) => (e.type === 'prediction' ? [e] : []))
  const finished = journal.find((e) => e.type === 'cutover-finished') as
    | Extract<JournalEntry, { type: 'cutover-finished' }>
    | undefined
  if (finished?.result.status !== 'ok') throw new Error('snapferry did not cut over')
  const final = stats[stats.length - 1] as VolumeRoundStats
  const rounds: RoundPoint[] = stats.map((s) => ({
    round: s.round,
    deltaBytes: s.dataBytes + s.zeroBytes,
    extents: s.extents,
    durationMs: s.totalMs,
    predictedWindowMs: predictions.find((p) => p.round === s.round)?.prediction.windowMs,
  }))
  const snap = finished.result.finalSnapshot.vm as string
  const [a, b] = await Promise.all([
    imageSha256(ctx.regions.a, `rbd/${ctx.srcImage}@${snap}`),
    imageSha256(ctx.regions.b, `rbd/${ctx.dstImage}@${snap}`),
  ])
  return {
    method: 'snapferry',
    warmRounds: stats.length - 2,
    rounds,
    windowMs: startedAt - stoppedAt,
    finalDeltaBytes: final.dataBytes + final.zeroBytes,
    finalSnapshotMs: final.snapshotMs,
    wireBytes,
    totalMs,
    predictedMs: finished.result.predictedMs ?? undefined,
    downtimeMs: finished.result.downtimeMs,
    breakdown: breakdown(journal, final, stoppedAt),
    identical: a === b,
    writerBytesPerSecond: await ctx.writer.achievedRate(),
  }
}

/** Where the window went: the writer's own stop, then every cutover step after it, from the journal. */
function breakdown(
  journal: readonly JournalEntry[],
  final: VolumeRoundStats,
  stoppedAt: number,
): Record<string, number> {
  const out: Record<string, number> = {}
  const started = new Map<string, number>()
  for (const e of journal) {
    if (e.type !== 'cutover-step') continue
    if (e.status === 'started') started.set(e.step, Date.parse(e.at))
    else out[e.step] = e.durationMs ?? Date.parse(e.at) - (started.get(e.step) ?? 0)
  }
  out['final snapshot'] = final.snapshotMs
  out['final transfer'] = final.transferMs
  // The destination's apply, as it reported it: when each step ended, ms after the apply began.
  for (const [k, v] of Object.entries(final.applyPhasesMs ?? {})) out[`apply: ${k}`] = v
  out['hook exit after writer stopped'] = Math.max(0, (started.get('final-delta') ?? stoppedAt) - stoppedAt)
  return out
}
