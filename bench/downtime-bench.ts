/**
 * npm run bench:downtime — measured cutover downtime: snapferry against the manual runbook
 * (bench/downtime/manual-runbook.sh), under a live writer, on two real bluestore Ceph clusters in two
 * network namespaces with sshd, unshaped and tbf 100 Mbit. Prints the ratio (manual window ÷ snapferry
 * window) per scenario. Each finished scenario is merged into docs/bench/downtime-results.json (a scenario
 * measured again replaces its old result) and the tables in docs/BENCHMARKS.md (between the downtime-bench
 * markers) and one SVG per scenario in docs/bench/ are regenerated from all saved results, so partial
 * runs add up and a stopped run keeps what it finished. Needs root, iproute2, openssh-server, Ceph.
 *
 * usage: node dist/bench/downtime-bench.js [--only SUBSTRING]... [--methods snapferry,manual,manual-3]
 *          [--repeat N (runs per method, order alternating)] [--target 1s] [--json FILE]
 *          [--baseline-budget K (the manual runbook starts no warm round after K × snapferry's run time)]
 *          [--snapshots-keep N (snapferry's snapshots.keep, default 2)] [--compression auto|none|LEVEL]
 *          [--settle on|off (snapferry's convergence.settle, default on)]
 *          [--osd-malloc tcmalloc|glibc (the OSDs' allocator, default tcmalloc: lib/ceph-regions.ts)]
 *          [--work DIR (kept)] [--no-docs]
 *        node dist/bench/downtime-bench.js --from-json FILE   (tables and pictures from saved results)
 */
import { spawnSync } from 'node:child_process'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { aimsList } from './downtime/aims.js'
import { scenarioChart } from './downtime/chart.js'
import {
  breakdownTable,
  detailTable,
  provenanceList,
  ratio,
  replaceSection,
  summaryTable,
  warmRoundsOf,
} from './downtime/report.js'
import { measureLinkRate, runScenario } from './downtime/run-scenario.js'
import { fullMatrix, mergeResults, type ScenarioResult, scenarioName } from './downtime/scenario.js'
import { type CephRegions, type OsdMalloc, osdMallocFromEnv, startCephRegions } from './lib/ceph-regions.js'

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..')

function arg(name: string): string[] {
  const out: string[] = []
  for (let i = 2; i < process.argv.length; i++)
    if (process.argv[i] === name) out.push(process.argv[++i] ?? '')
  return out
}

function preflight(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces)'
  for (const [bin, pkg] of [
    ['/usr/sbin/sshd', 'openssh-server'],
    ['/usr/bin/ceph-osd', 'ceph-osd'],
    ['/usr/bin/rbd', 'ceph-common'],
  ])
    if (spawnSync('test', ['-x', bin as string]).status !== 0) return `needs ${pkg} (apt-get install ${pkg})`
  if (spawnSync('/usr/bin/python3', ['-c', 'import rbd']).status !== 0) return 'needs python3-rbd'
  return undefined
}

/** '100mbit' → bytes per second. */
function tbfBytesPerSecond(rate: string): number {
  const m = /^(\d+(?:\.\d+)?)(k|m|g)bit$/.exec(rate)
  if (!m) throw new Error(`unknown tbf rate ${rate}`)
  return (Number(m[1]) * { k: 1e3, m: 1e6, g: 1e9 }[m[2] as 'k' | 'm' | 'g']) / 8
}

const only = arg('--only')
const target = arg('--target')[0] ?? '1s'
const jsonOut = arg('--json')[0]
const keepDir = arg('--work')[0]
const fromJson = arg('--from-json')[0]
const methods = arg('--methods')[0]?.split(',')
const snapshotsKept =
  arg('--snapshots-keep')[0] === undefined ? undefined : Number(arg('--snapshots-keep')[0])
const repetitions = Number(arg('--repeat')[0] ?? '1')
if (!Number.isInteger(repetitions) || repetitions < 1) {
  console.error(`--repeat wants a whole number of runs per method (1 or more), not ${arg('--repeat')[0]}`)
  process.exit(2)
}
if (snapshotsKept !== undefined && (!Number.isInteger(snapshotsKept) || snapshotsKept < 1)) {
  console.error(`--snapshots-keep wants a whole number (1 or more), not ${arg('--snapshots-keep')[0]}`)
  process.exit(2)
}
const budgetArg = arg('--baseline-budget')[0]
const baselineBudget = budgetArg === undefined ? undefined : Number(budgetArg)
if (baselineBudget !== undefined && !(Number.isFinite(baselineBudget) && baselineBudget > 0)) {
  console.error(
    `--baseline-budget wants a multiple of snapferry's run time (e.g. 1 or 1.5), not ${budgetArg}`,
  )
  process.exit(2)
}
if (baselineBudget !== undefined && methods !== undefined && !methods.includes('snapferry')) {
  console.error("--baseline-budget is a multiple of snapferry's run time: --methods must include snapferry")
  process.exit(2)
}
const settleArg = arg('--settle')[0]
if (settleArg !== undefined && settleArg !== 'on' && settleArg !== 'off') {
  console.error(`--settle wants on or off, not ${settleArg}`)
  process.exit(2)
}
const settle = settleArg === undefined ? undefined : settleArg === 'on'
const osdMallocArg = arg('--osd-malloc')[0]
if (osdMallocArg !== undefined && osdMallocArg !== 'tcmalloc' && osdMallocArg !== 'glibc') {
  console.error(`--osd-malloc wants tcmalloc or glibc, not ${osdMallocArg}`)
  process.exit(2)
}
const osdMalloc: OsdMalloc = osdMallocArg ?? osdMallocFromEnv()
const compression = arg('--compression')[0]
if (compression !== undefined && !/^(auto|none|[1-9]|1[0-9])$/.test(compression)) {
  console.error(`--compression wants auto, none or a zstd level 1–19, not ${compression}`)
  process.exit(2)
}
const writeDocs = !process.argv.includes('--no-docs')
const command = `npm run bench:downtime${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`
const SAVED = path.join(ROOT, 'docs/bench/downtime-results.json')
const commit = (() => {
  const head = spawnSync('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' })
  const dirty = spawnSync('git', ['-C', ROOT, 'status', '--porcelain', '--', 'src', 'bench', 'agents'], {
    encoding: 'utf8',
  })
  const id = head.status === 0 ? head.stdout.trim() : 'unknown'
  return dirty.stdout?.trim() ? `${id} + uncommitted changes` : id
})()

async function loadSaved(): Promise<ScenarioResult[]> {
  try {
    return JSON.parse(await readFile(SAVED, 'utf8')) as ScenarioResult[]
  } catch {
    return []
  }
}

/** Tables and pictures from `results` into docs/BENCHMARKS.md and docs/bench/. */
async function writeDocsFor(results: readonly ScenarioResult[], header: string): Promise<void> {
  const pics = path.join(ROOT, 'docs/bench')
  await mkdir(pics, { recursive: true })
  for (const r of results)
    await writeFile(path.join(pics, `downtime-${scenarioName(r.scenario)}.svg`), scenarioChart(r))
  const doc = path.join(ROOT, 'docs/BENCHMARKS.md')
  const section = [
    header,
    summaryTable(results),
    "#### Issue 6's aims, checked against these results",
    aimsList(results),
    '#### When and how each scenario was measured',
    provenanceList(results),
    '#### Every run',
    detailTable(results),
    "#### Where snapferry's window went (ms, from its journal)",
    breakdownTable(results),
    '#### Pictures',
    results
      .map((r) => `![${scenarioName(r.scenario)}](bench/downtime-${scenarioName(r.scenario)}.svg)`)
      .join('\n\n'),
  ].join('\n\n')
  await writeFile(doc, replaceSection(await readFile(doc, 'utf8'), section))
  // The tables come out unaligned; `npm run lint` checks the docs' format, so leave them as biome would.
  const biome = path.join(ROOT, 'node_modules/.bin/biome')
  if (spawnSync(biome, ['format', '--write', doc], { stdio: 'ignore' }).status !== 0)
    console.error(`could not format ${doc}: run \`npm run format\` before committing it`)
}

const MERGED_HEADER =
  'Results add up across runs of `npm run bench:downtime` (each scenario says below when, on which commit and with which command it was measured, and how many runs per method; with several, a window is the median with the range in brackets, a ratio is median ÷ median with the range of the ratios within each repetition, and the picture shows the median runs). The raw results are [docs/bench/downtime-results.json](bench/downtime-results.json); `npm run bench:downtime -- --from-json docs/bench/downtime-results.json` regenerates these tables and pictures.'

async function runAll(): Promise<ScenarioResult[]> {
  const missing = preflight()
  if (missing) {
    console.error(`downtime bench skipped: ${missing}`)
    process.exit(2)
  }
  const scenarios = fullMatrix().filter(
    (s) => only.length === 0 || only.some((o) => scenarioName(s).includes(o)),
  )
  const work = keepDir ?? (await mkdtemp(path.join(tmpdir(), 'sf-downtime-')))
  await mkdir(work, { recursive: true })
  // Fresh clusters for every scenario: the same run on clusters that already served a scenario's
  // runs (images written, snapshotted and removed) took up to twice as long (docs/BENCHMARKS.md).
  let regions: CephRegions | undefined
  let starting: Promise<CephRegions> | undefined
  // Stopped with Ctrl-C or kill: take the clusters, namespaces and sshds down instead of leaving them,
  // also when they are still starting.
  const interrupted = (sig: NodeJS.Signals) => {
    process.stderr.write(`\n${sig}: stopping the clusters and namespaces\n`)
    void (async () => (regions ?? (await starting?.catch(() => undefined)))?.stop())().finally(() =>
      process.exit(130),
    )
  }
  process.once('SIGINT', interrupted)
  process.once('SIGTERM', interrupted)
  const results: ScenarioResult[] = []
  try {
    const rates = new Map<string, number>()
    for (const s of scenarios) {
      await regions?.stop()
      regions = undefined
      starting = startCephRegions(ROOT, osdMalloc)
      regions = await starting
      await regions.hosts.shape(s.link)
      const key = s.link ?? 'unshaped'
      // The floor needs the link's physical rate: tbf's for a shaped link, the best of two OpenSSH
      // transfers for the unshaped veth (on this shared 2-core host that is a CPU limit, not the wire's).
      if (!rates.has(key))
        rates.set(
          key,
          s.link
            ? tbfBytesPerSecond(s.link)
            : Math.max(await measureLinkRate(regions, work, 256), await measureLinkRate(regions, work, 256)),
        )
      const rate = rates.get(key) as number
      process.stderr.write(
        `${scenarioName(s)} (link ${(rate / 1e6).toFixed(1)} MB/s, OSDs on ${osdMalloc === 'tcmalloc' ? 'tcmalloc' : "glibc's malloc"})\n`,
      )
      const r = await runScenario(regions, ROOT, work, s, rate, {
        targetDowntime: target,
        methods,
        repetitions,
        snapshotsKept,
        compression,
        settle,
        baselineBudget,
        onRun: (run) =>
          process.stderr.write(
            `  ${repetitions > 1 ? `run ${(run.repetition ?? 0) + 1}, ` : ''}${run.method}: window ${(run.windowMs / 1000).toFixed(2)} s, ${warmRoundsOf(run)} warm rounds, final delta ${(run.finalDeltaBytes / 1048576).toFixed(2)} MiB${run.predictedMs ? `, predicted ${(run.predictedMs / 1000).toFixed(2)} s (own measure ${((run.downtimeMs ?? 0) / 1000).toFixed(2)} s)` : ''}, writer ${(run.writerBytesPerSecond / 1048576).toFixed(2)} MiB/s, CPU stolen ${run.cpuSteal === undefined ? '?' : `${(run.cpuSteal * 100).toFixed(0)} %`}, identical ${run.identical}\n`,
          ),
      })
      const measured = { at: new Date().toISOString(), command, commit, osdMalloc }
      results.push({ ...r, measured })
      if (writeDocs) {
        const merged = mergeResults(await loadSaved(), [{ ...r, measured }])
        await writeFile(SAVED, `${JSON.stringify(merged, null, 2)}\n`)
        await writeDocsFor(merged, MERGED_HEADER)
      }
      const same = ratio(r, 'manual')
      const three = ratio(r, 'manual-3')
      console.log(
        `${scenarioName(r.scenario)}: manual ÷ snapferry window = ${same?.toFixed(2) ?? '—'}× (same rounds), ${three?.toFixed(2) ?? '—'}× (3 rounds)`,
      )
      if (jsonOut) await writeFile(jsonOut, JSON.stringify(results, null, 2))
    }
  } finally {
    await regions?.stop()
    if (!keepDir) await rm(work, { recursive: true, force: true })
  }
  return results
}

const results: ScenarioResult[] = fromJson
  ? (JSON.parse(await readFile(fromJson, 'utf8')) as ScenarioResult[])
  : await runAll()
console.log(`\n${summaryTable(results)}`)
// Saved results add up across runs: the aims are judged on all of them unless told to leave them alone.
const allSaved = writeDocs && !fromJson
console.log(
  `\nThe aims, against ${allSaved ? 'every saved result' : 'these results'}:\n${aimsList(allSaved ? await loadSaved() : results)}`,
)
if (writeDocs && fromJson) {
  await writeDocsFor(results, MERGED_HEADER)
  console.log(`\nwrote docs/BENCHMARKS.md and ${results.length} pictures in docs/bench/`)
} else if (writeDocs && results.length > 0) {
  console.log(
    `\nmerged ${results.length} scenario(s) into docs/bench/downtime-results.json; docs/BENCHMARKS.md and docs/bench/ regenerated`,
  )
}
