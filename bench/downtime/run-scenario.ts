/**
 * One scenario: the same seed image and the same live writer for snapferry and the manual runbook (twice),
 * repeated with the order alternating (scenario.ts, methodOrder).
 */
import { mkdir, rm } from 'node:fs/promises'
import path from 'node:path'
import type { CephRegions } from '../lib/ceph-regions.js'
import { sampleCpu, stealShare } from './cpu-steal.js'
import { osdWritesBetween } from './osd-latency.js'
import { runInA } from './run-context.js'
import { runManual } from './run-manual.js'
import { runSnapferry } from './run-snapferry.js'
import { type MethodRun, methodOrder, type Scenario, type ScenarioResult, scenarioName } from './scenario.js'
import { makeSourceImage, removeImage, startWriter } from './workload.js'

export interface ScenarioOptions {
  readonly targetDowntime: string
  /** Run only these methods (default: all three). */
  readonly methods?: readonly string[] | undefined
  /** Run every method this many times, the order alternating between repetitions (default 1). */
  readonly repetitions?: number | undefined
  /** snapferry's `snapshots.keep` (default 2; more than its rounds means no snapshot is removed during a run). */
  readonly snapshotsKept?: number | undefined
  /** snapferry's `transport.compression` (default auto). */
  readonly compression?: string | undefined
  /** snapferry's `convergence.settle` (default true). */
  readonly settle?: boolean | undefined
  /**
   * A time budget for the manual runbook, as a multiple of the latest snapferry run's total time: past it
   * the runbook starts no new warm round and cuts over (run-manual.ts). Default none: all its rounds.
   */
  readonly baselineBudget?: number | undefined
  /** Called after each method with its figures (progress output). */
  readonly onRun?: (run: MethodRun) => void
}

/** Raw throughput of the shaped or unshaped link, measured with OpenSSH like the manual runbook ships. */
export async function measureLinkRate(regions: CephRegions, dir: string, mib: number): Promise<number> {
  const h = regions.hosts
  const t0 = performance.now()
  const r = await runInA(h, [
    'bash',
    '-c',
    `head -c ${mib << 20} /dev/urandom > "$1/link.bin" && t0=$(date +%s%N) && ssh -i ${h.identity} -o UserKnownHostsFile=${h.knownHosts} -o BatchMode=yes root@${h.ipB} 'cat > /dev/null' < "$1/link.bin" && echo $(( $(date +%s%N) - t0 ))`,
    'x',
    dir,
  ])
  if (r.code !== 0) throw new Error(`link measurement failed: ${r.err}`)
  await rm(path.join(dir, 'link.bin'), { force: true })
  const ns = Number(r.out.trim().split('\n').pop())
  return Number.isFinite(ns) && ns > 0
    ? (mib << 20) / (ns / 1e9)
    : (mib << 20) / ((performance.now() - t0) / 1000)
}

export async function runScenario(
  regions: CephRegions,
  repoRoot: string,
  workDir: string,
  s: Scenario,
  linkBytesPerSecond: number,
  opts: ScenarioOptions,
): Promise<ScenarioResult> {
  const dir = path.join(workDir, scenarioName(s))
  await mkdir(dir, { recursive: true })
  const runs: MethodRun[] = []
  const one = async (
    method: MethodRun['method'],
    warm: number,
    repetition: number,
    budgetMs: number | undefined,
  ) => {
    const ctx = { regions, repoRoot, dir, srcImage: `src-${method}`, dstImage: `dst-${method}` }
    await removeImage(regions.a, `rbd/${ctx.srcImage}`)
    await removeImage(regions.b, `rbd/${ctx.dstImage}`)
    await makeSourceImage(regions.a, `rbd/${ctx.srcImage}`, s.imageBytes)
    const writer = await startWriter(regions.a, repoRoot, 'rbd', ctx.srcImage, s.writer, dir)
    try {
      const [cpu0, src0, dst0] = await Promise.all([
        sampleCpu(),
        regions.a.osdWrites(),
        regions.b.osdWrites(),
      ])
      const measured =
        method === 'snapferry'
          ? await runSnapferry(
              { ...ctx, writer },
              opts.targetDowntime,
              `snapferry-run${repetition + 1}`,
              opts,
            )
          : await runManual({ ...ctx, writer }, method, warm, budgetMs)
      const [cpu1, src1, dst1] = await Promise.all([
        sampleCpu(),
        regions.a.osdWrites(),
        regions.b.osdWrites(),
      ])
      const run = {
        ...measured,
        repetition,
        cpuSteal: stealShare(cpu0, cpu1),
        osd: { source: osdWritesBetween(src0, src1), destination: osdWritesBetween(dst0, dst1) },
      }
      runs.push(run)
      opts.onRun?.(run)
      return run
    } finally {
      await writer.kill()
      await removeImage(regions.a, `rbd/${ctx.srcImage}`)
      await removeImage(regions.b, `rbd/${ctx.dstImage}`)
      await rm(path.join(dir, 'state'), { recursive: true, force: true })
    }
  }
  const want = (m: string) => !opts.methods || opts.methods.includes(m)
  let sf: MethodRun | undefined
  for (let rep = 0; rep < (opts.repetitions ?? 1); rep++)
    for (const method of methodOrder(rep).filter(want)) {
      const budgetMs = opts.baselineBudget !== undefined && sf ? opts.baselineBudget * sf.totalMs : undefined
      const r = await one(method, method === 'manual' ? (sf?.warmRounds ?? 3) : 3, rep, budgetMs)
      if (method === 'snapferry') sf = r
    }
  return { scenario: s, linkBytesPerSecond, runs }
}
