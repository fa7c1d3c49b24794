/**
 * Where a base's time goes on the downtime bench's link: the same 1 GiB source image (512 MiB of data)
 * shipped as a base by `rbd export-diff | ssh | rbd import-diff` and by snapferry, alternately, onto a
 * fresh destination image each time, with no writer. Prints each run's wall time and the CPU-seconds
 * each process group used (controller, agents, rbd, ssh/sshd, OSDs), per namespace.
 *
 *   node dist/bench/downtime/base-probe.js [--repeat N] [--shape 100mbit] [--only manual|snapferry] [--work DIR]
 *
 * SNAPFERRY_BENCH_CPU_PROF=DIR writes V8 CPU profiles of snapferry's controller and agents.
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { readJournal } from '../../src/state/journal.js'
import { type CephRegions, startCephRegions } from '../lib/ceph-regions.js'
import { recordCpu, regionNamespaces } from './process-cpu.js'
import { runInA } from './run-context.js'
import { imageSha256, makeSourceImage } from './workload.js'

const GiB = 1024 ** 3
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..')

interface ProbeRun {
  readonly method: string
  readonly rep: number
  readonly wallMs: number
  readonly baseMs: number
  readonly wireBytes: number
  readonly identical: boolean
  readonly cpu: { groups: Record<string, number>; busyS: number; totalS: number }
  readonly applyPhasesMs?: Readonly<Record<string, number>> | undefined
}

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(name)
  return i > 0 ? (process.argv[i + 1] ?? fallback) : fallback
}

async function manualBase(r: CephRegions, dst: string, snap: string): Promise<number> {
  const h = r.hosts
  await r.b.rbd('create', '--size', `${GiB}B`, dst)
  const t0 = performance.now()
  const res = await runInA(h, [
    'bash',
    '-c',
    `set -o pipefail; rbd --conf ${r.a.conf} export-diff --no-progress rbd/src@${snap} - | ssh -i ${h.identity} -o UserKnownHostsFile=${h.knownHosts} -o BatchMode=yes root@${h.ipB} rbd --conf ${r.b.conf} import-diff --no-progress - ${dst}`,
  ])
  if (res.code !== 0) throw new Error(`manual base: ${res.err}`)
  return performance.now() - t0
}

async function snapferryBase(
  r: CephRegions,
  dir: string,
  dst: string,
): Promise<{ baseMs: number; phases?: Readonly<Record<string, number>> | undefined; snap: string }> {
  const h = r.hosts
  const prof = process.env.SNAPFERRY_BENCH_CPU_PROF
    ? ['--cpu-prof', `--cpu-prof-dir=${process.env.SNAPFERRY_BENCH_CPU_PROF}`]
    : []
  const agent = path.join(repoRoot, 'dist/agents/snapferry-agent.js')
  const file = path.join(dir, 'pipeline.yaml')
  await writeFile(
    file,
    `apiVersion: snapferry/v1
kind: Pipeline
name: base-probe
volumes:
  - name: vm
    source: { driver: rbd, pool: rbd, image: src, conf: ${r.a.conf}, host: local }
    destination: { driver: rbd, pool: rbd, image: ${dst.split('/')[1]}, conf: ${r.b.conf}, host: root@${h.ipB} }
stateDir: state
convergence: { targetDowntime: 60s, minRounds: 0, maxRounds: 1, whenConverged: cutover }
cutover: { verify: none }
transport:
  compression: ${process.env.SNAPFERRY_PROBE_COMPRESSION ?? 'auto'}
  ssh: { config: none, knownHosts: ${h.knownHosts}, identityFile: ${h.identity}, agentCommand: [${[process.execPath, ...prof, agent].join(', ')}] }
`,
  )
  const res = await runInA(h, [
    process.execPath,
    ...prof,
    path.join(repoRoot, 'dist/src/cli/main.js'),
    'run',
    file,
  ])
  if (res.code !== 0) throw new Error(`snapferry run exited ${res.code}:\n${res.err}\n${res.out}`)
  for (const l of res.err.split('\n')) if (l.startsWith('SFSTATS')) console.log(l)
  const journal = await readJournal(path.join(dir, 'state'))
  const base = journal.find((e) => e.type === 'round-completed' && e.stats.round === 0)
  if (base?.type !== 'round-completed') throw new Error('no base round in the journal')
  return { baseMs: base.stats.transferMs, phases: base.stats.applyPhasesMs, snap: base.stats.toSnap }
}

async function main(): Promise<void> {
  const repeat = Number(arg('--repeat', '3'))
  const shape = arg('--shape', 'none')
  const only = arg('--only', 'all')
  const work = arg('--work', path.join(tmpdir(), `sf-base-probe-${process.pid}`))
  await mkdir(work, { recursive: true })
  const r = await startCephRegions(repoRoot)
  const runs: ProbeRun[] = []
  try {
    if (shape !== 'none') await r.hosts.shape(shape)
    await makeSourceImage(r.a, 'rbd/src', GiB)
    const names = await regionNamespaces(r)
    for (let rep = 1; rep <= repeat; rep++) {
      const order = rep % 2 === 1 ? ['manual', 'snapferry'] : ['snapferry', 'manual']
      for (const method of order.filter((m) => only === 'all' || m === only)) {
        const dst = `rbd/dst-${method}-${rep}`
        const dir = path.join(work, `${method}-${rep}`)
        await mkdir(dir, { recursive: true })
        const manualSnap = `probe-${rep}`
        if (method === 'manual') await r.a.rbd('snap', 'create', `rbd/src@${manualSnap}`)
        const wire0 = await r.hosts.linkBytes()
        const cpu = await recordCpu(names)
        const t0 = performance.now()
        const res =
          method === 'manual'
            ? { baseMs: await manualBase(r, dst, manualSnap), phases: undefined, snap: manualSnap }
            : await snapferryBase(r, dir, dst)
        const wallMs = performance.now() - t0
        const used = await cpu.stop()
        const wireBytes = (await r.hosts.linkBytes()) - wire0
        const [a, b] = await Promise.all([
          imageSha256(r.a, `rbd/src@${res.snap}`),
          imageSha256(r.b, `${dst}@${res.snap}`),
        ])
        const run: ProbeRun = {
          method,
          rep,
          wallMs,
          baseMs: res.baseMs,
          wireBytes,
          identical: a === b,
          cpu: used,
          applyPhasesMs: res.phases,
        }
        runs.push(run)
        const groups = Object.entries(used.groups)
          .filter(([, s]) => s >= 0.1)
          .sort((x, y) => y[1] - x[1])
          .map(([g, s]) => `${g} ${s.toFixed(1)}`)
          .join(', ')
        console.log(
          `${method} #${rep}: base ${(res.baseMs / 1000).toFixed(2)} s (run ${(wallMs / 1000).toFixed(2)} s), ${(wireBytes / 2 ** 20).toFixed(0)} MiB on the link, ${a === b ? 'identical' : 'DIFFERENT'}; CPU-s busy ${used.busyS.toFixed(1)} of ${used.totalS.toFixed(1)}: ${groups}`,
        )
        await r.b.rbd('rm', '--no-progress', dst).catch(async () => {
          await r.b.rbd('snap', 'purge', '--no-progress', dst)
          await r.b.rbd('rm', '--no-progress', dst)
        })
        await r.a.rbd('snap', 'purge', '--no-progress', 'rbd/src')
      }
    }
  } finally {
    await writeFile(path.join(work, 'base-probe.json'), JSON.stringify(runs, null, 2))
    await r.stop()
    console.log(`results: ${path.join(work, 'base-probe.json')}`)
  }
}

await main()
