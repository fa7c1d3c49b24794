/** One run of the manual runbook (bench/downtime/manual-runbook.sh: rbd and OpenSSH only) on a downtime scenario. */
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { type RunContext, runInA } from './run-context.js'
import type { Method, MethodRun, RoundPoint } from './scenario.js'
import { imageSha256 } from './workload.js'

interface Step {
  readonly name: string
  readonly start: number
  readonly end: number
}

/** Changed bytes and extents between two snapshots, as `rbd diff` reports them (read after the run, outside any timing). */
async function delta(
  ctx: RunContext,
  from: string | undefined,
  to: string,
): Promise<{ deltaBytes: number; extents: number }> {
  const args = [
    'diff',
    '--format',
    'json',
    ...(from ? ['--from-snap', from] : []),
    `rbd/${ctx.srcImage}@${to}`,
  ]
  const extents = JSON.parse(await ctx.regions.a.rbd(...args)) as { length: number }[]
  return { deltaBytes: extents.reduce((n, e) => n + e.length, 0), extents: extents.length }
}

/**
 * `warmBudgetMs`: an operator's time budget. No warm round starts once that long has passed since the
 * runbook began; the round in progress finishes and the cutover follows with the rounds done so far.
 */
export async function runManual(
  ctx: RunContext,
  method: Method,
  plannedWarmRounds: number,
  warmBudgetMs?: number,
): Promise<MethodRun> {
  const h = ctx.regions.hosts
  const marker = path.join(ctx.dir, `${method}.started`)
  const wire0 = await h.linkBytes()
  const t0 = Date.now()
  const warmUntil = warmBudgetMs === undefined ? '' : String(Math.ceil((t0 + warmBudgetMs) / 1000))
  const r = await runInA(
    h,
    [
      path.join(ctx.repoRoot, 'bench/downtime/manual-runbook.sh'),
      `rbd/${ctx.srcImage}`,
      `root@${h.ipB}`,
      `rbd/${ctx.dstImage}`,
      String(plannedWarmRounds),
    ],
    {
      RBD_SRC: `--conf ${ctx.regions.a.conf}`,
      RBD_DST: `--conf ${ctx.regions.b.conf}`,
      SSH_OPTS: `-i ${h.identity} -o UserKnownHostsFile=${h.knownHosts} -o BatchMode=yes`,
      STOP_CMD: `${path.join(ctx.repoRoot, 'bench/downtime/stop-writer.sh')} ${ctx.writer.pidFile}`,
      START_CMD: `date +%s.%N > ${marker}`,
      WARM_UNTIL: warmUntil,
    },
  )
  const totalMs = Date.now() - t0
  const wireBytes = (await h.linkBytes()) - wire0
  if (r.code !== 0) throw new Error(`manual runbook exited ${r.code}:\n${r.err}`)
  const steps: Step[] = r.out
    .split('\n')
    .filter((l) => l.startsWith('STEP '))
    .map((l) => {
      const [, name, start, end] = l.split(' ')
      return { name: name as string, start: Number(start) * 1000, end: Number(end) * 1000 }
    })
  // Snapshots 0 (the base) and the final one, and one per warm round the budget left time for.
  const warmRounds = steps.filter((s) => s.name.startsWith('snapshot-')).length - 2
  const stoppedAt = await ctx.writer.stoppedAt()
  const startedAt = Number((await readFile(marker, 'utf8')).trim()) * 1000
  const finalIndex = warmRounds + 1
  const rounds: RoundPoint[] = []
  for (let i = 0; i <= finalIndex; i++) {
    const snap = steps.find((s) => s.name === `snapshot-${i}`) as Step
    const ship = steps.find((s) => s.name === `round-${i}`) as Step
    rounds.push({
      round: i,
      ...(await delta(ctx, i === 0 ? undefined : `manual-${i - 1}`, `manual-${i}`)),
      durationMs: ship.end - snap.start,
    })
  }
  const finalSnap = steps.find((s) => s.name === `snapshot-${finalIndex}`) as Step
  const [a, b] = await Promise.all([
    imageSha256(ctx.regions.a, `rbd/${ctx.srcImage}@manual-${finalIndex}`),
    imageSha256(ctx.regions.b, `rbd/${ctx.dstImage}@manual-${finalIndex}`),
  ])
  return {
    method,
    warmRounds,
    ...(warmBudgetMs === undefined ? {} : { warmBudgetMs }),
    ...(warmRounds < plannedWarmRounds ? { plannedWarmRounds } : {}),
    rounds,
    windowMs: startedAt - stoppedAt,
    finalDeltaBytes: (rounds[finalIndex] as RoundPoint).deltaBytes,
    finalSnapshotMs: finalSnap.end - finalSnap.start,
    wireBytes,
    totalMs,
    identical: a === b,
    writerBytesPerSecond: await ctx.writer.achievedRate(),
  }
}
