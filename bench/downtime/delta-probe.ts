/**
 * What one migrated small extent costs in CPU, per process, for each method: on the downtime bench's two
 * regions, with no writer running, a delta of N unique random 4 KiB blocks is shipped by
 * `rbd export-diff --from-snap | ssh | rbd import-diff` and by snapferry's final round, alternately,
 * each onto a destination that already holds the delta's start. Prints each run's time and the CPU-ms
 * per extent each process group used (controller, agents, exporter, rbd, ssh/sshd, OSDs), per namespace.
 *
 *   node dist/bench/downtime/delta-probe.js [--extents 4096] [--repeat 2] [--shape 100mbit]
 *     [--only manual|snapferry] [--compression auto|none|zstd:1] [--work DIR]
 *
 * SNAPFERRY_BENCH_CPU_PROF=DIR writes V8 CPU profiles of snapferry's controller and agents.
 * SNAPFERRY_PROBE_DURING='perf record -a -g -o /tmp/perf.data' runs a command (through bash) for the
 * length of each delta and stops it with SIGINT after: perf, or `strace -c` of the processes.
 */
import { spawn } from 'node:child_process'
import { mkdir, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { requestCutover } from '../../src/engine/requests.js'
import { readJournal } from '../../src/state/journal.js'
import { type CephRegions, startCephRegions } from '../lib/ceph-regions.js'
import { recordCpu, regionNamespaces } from './process-cpu.js'
import { runInA } from './run-context.js'
import { imageSha256, makeSourceImage, removeImage } from './workload.js'

const GiB = 1024 ** 3
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..')

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(name)
  return i > 0 ? (process.argv[i + 1] ?? fallback) : fallback
}

/**
 * Write the last 4 KiB of every object: Pacific reports a whole object as changed after a write past the
 * object's end (../shared reference; docs/BENCHMARKS.md), and the seed leaves each object 3 MiB long, so
 * without this the probe's delta would be whole objects instead of 4 KiB extents.
 */
async function fillObjectEnds(r: CephRegions, image: string): Promise<void> {
  const py = `
import rados, rbd, sys
c = rados.Rados(conffile=sys.argv[1]); c.connect()
io = c.open_ioctx('rbd'); img = rbd.Image(io, sys.argv[2])
obj = 1 << img.stat()['order']
for end in range(obj, img.size() + 1, obj): img.write(b'\\x01' * 4096, end - 4096)
img.flush(); img.close(); io.close(); c.shutdown()
`
  const res = await runInA(r.hosts, ['/usr/bin/python3', '-c', py, r.a.conf, image])
  if (res.code !== 0) throw new Error(`filling object ends: ${res.err}`)
}

/** N unique random 4 KiB blocks (a random permutation of the image's blocks), written by librbd. */
async function writeBlocks(r: CephRegions, image: string, n: number, seed: number): Promise<void> {
  const py = `
import rados, rbd, random, os, sys
random.seed(${seed})
c = rados.Rados(conffile=sys.argv[1]); c.connect()
io = c.open_ioctx('rbd'); img = rbd.Image(io, sys.argv[2])
blocks = random.sample(range(img.size() // 4096), ${n})
for b in blocks: img.write(os.urandom(4096), b * 4096)
img.flush(); img.close(); io.close(); c.shutdown()
`
  const res = await runInA(r.hosts, ['/usr/bin/python3', '-c', py, r.a.conf, image])
  if (res.code !== 0) throw new Error(`writing blocks: ${res.err}`)
}

async function manualDelta(
  r: CephRegions,
  src: string,
  dst: string,
  from: string,
  to: string,
): Promise<number> {
  const h = r.hosts
  const t0 = performance.now()
  const res = await runInA(h, [
    'bash',
    '-c',
    `set -o pipefail; rbd --conf ${r.a.conf} export-diff --no-progress --from-snap ${from} ${src}@${to} - | ssh -i ${h.identity} -o UserKnownHostsFile=${h.knownHosts} -o BatchMode=yes root@${h.ipB} rbd --conf ${r.b.conf} import-diff --no-progress - ${dst}`,
  ])
  if (res.code !== 0) throw new Error(`manual delta: ${res.err}`)
  return performance.now() - t0
}

function pipelineText(r: CephRegions, src: string, dst: string, compression: string, prof: string[]): string {
  const h = r.hosts
  const agent = path.join(repoRoot, 'dist/agents/snapferry-agent.js')
  return `apiVersion: snapferry/v1
kind: Pipeline
name: delta-probe
volumes:
  - name: vm
    source: { driver: rbd, pool: rbd, image: ${src.split('/')[1]}, conf: ${r.a.conf}, host: local }
    destination: { driver: rbd, pool: rbd, image: ${dst.split('/')[1]}, conf: ${r.b.conf}, host: root@${h.ipB} }
stateDir: state
convergence: { targetDowntime: 60s, minRounds: 0, maxRounds: 1, whenConverged: hold, holdInterval: 1h }
cutover: { verify: none }
transport:
  compression: ${compression}
  ssh: { config: none, knownHosts: ${h.knownHosts}, identityFile: ${h.identity}, agentCommand: [${[process.execPath, ...prof, agent].join(', ')}] }
`
}

/** The SNAPFERRY_PROBE_DURING command, running until the returned function is called. */
function during(label: string): () => Promise<void> {
  const cmd = process.env.SNAPFERRY_PROBE_DURING
  if (!cmd) return async () => {}
  const p = spawn('bash', ['-c', `exec ${cmd}`], {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, PROBE_LABEL: label },
  })
  return async () => {
    p.kill('SIGINT')
    await new Promise((res) => p.once('close', res))
  }
}

/** Spawn argv in namespace A and return its exit. */
function startInA(r: CephRegions, argv: string[]): { done: Promise<{ code: number | null; err: string }> } {
  const full = r.hosts.inA(argv)
  const { SSH_AUTH_SOCK: _drop, ...env } = process.env
  const p = spawn(full[0] as string, full.slice(1), { env, stdio: ['ignore', 'ignore', 'pipe'] })
  let err = ''
  p.stderr.on('data', (b: Buffer) => {
    err += b.toString()
  })
  return { done: new Promise((res) => p.on('close', (code) => res({ code, err }))) }
}

async function waitFor(what: string, test: () => Promise<boolean>, ms = 300_000): Promise<void> {
  const end = Date.now() + ms
  while (!(await test())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((res) => setTimeout(res, 200))
  }
}

interface ProbeRun {
  readonly method: string
  readonly rep: number
  readonly extents: number
  readonly deltaMs: number
  /** What the delta held: its extents and data bytes (rbd diff's for the manual method). */
  readonly delta: { extents: number; bytes: number }
  readonly identical: boolean
  readonly cpu: { groups: Record<string, number>; busyS: number; totalS: number }
  readonly applyPhasesMs?: Readonly<Record<string, number>> | undefined
}

async function main(): Promise<void> {
  const extents = Number(arg('--extents', '4096'))
  const repeat = Number(arg('--repeat', '2'))
  const shape = arg('--shape', 'none')
  const only = arg('--only', 'all')
  const compression = arg('--compression', 'auto')
  const work = arg('--work', path.join(tmpdir(), `sf-delta-probe-${process.pid}`))
  await mkdir(work, { recursive: true })
  const prof = process.env.SNAPFERRY_BENCH_CPU_PROF
    ? ['--cpu-prof', `--cpu-prof-dir=${process.env.SNAPFERRY_BENCH_CPU_PROF}`]
    : []
  const r = await startCephRegions(repoRoot)
  const runs: ProbeRun[] = []
  try {
    if (shape !== 'none') await r.hosts.shape(shape)
    const names = await regionNamespaces(r)
    for (let rep = 1; rep <= repeat; rep++) {
      const order = rep % 2 === 1 ? ['manual', 'snapferry'] : ['snapferry', 'manual']
      for (const method of order.filter((m) => only === 'all' || m === only)) {
        const src = `rbd/src-${method}-${rep}`
        const dst = `rbd/dst-${method}-${rep}`
        const dir = path.join(work, `${method}-${rep}`)
        await mkdir(dir, { recursive: true })
        await makeSourceImage(r.a, src, GiB)
        await fillObjectEnds(r, src.split('/')[1] as string)
        let deltaMs: number
        let snap: string
        let phases: Readonly<Record<string, number>> | undefined
        let delta: { extents: number; bytes: number }
        let cpu: Awaited<ReturnType<Awaited<ReturnType<typeof recordCpu>>['stop']>>
        if (method === 'manual') {
          await r.a.rbd('snap', 'create', `${src}@p0`)
          await r.b.rbd('create', '--size', `${GiB}B`, dst)
          await runInA(r.hosts, [
            'bash',
            '-c',
            `set -o pipefail; rbd --conf ${r.a.conf} export-diff --no-progress ${src}@p0 - | ssh -i ${r.hosts.identity} -o UserKnownHostsFile=${r.hosts.knownHosts} -o BatchMode=yes root@${r.hosts.ipB} rbd --conf ${r.b.conf} import-diff --no-progress - ${dst}`,
          ])
          await writeBlocks(r, src.split('/')[1] as string, extents, rep)
          await r.a.rbd('snap', 'create', `${src}@p1`)
          const rec = await recordCpu(names)
          const stop = during(`${method}-${rep}`)
          deltaMs = await manualDelta(r, src, dst, 'p0', 'p1')
          await stop()
          cpu = await rec.stop()
          snap = 'p1'
          const diff = JSON.parse(
            await r.a.rbd('diff', '--format', 'json', '--from-snap', 'p0', `${src}@p1`),
          ) as { length: number }[]
          delta = { extents: diff.length, bytes: diff.reduce((a, d) => a + d.length, 0) }
        } else {
          const file = path.join(dir, 'pipeline.yaml')
          await writeFile(file, pipelineText(r, src, dst, compression, prof))
          const cli = path.join(repoRoot, 'dist/src/cli/main.js')
          const run = startInA(r, [process.execPath, ...prof, cli, 'run', file])
          const journalPath = path.join(dir, 'state')
          await waitFor('the base and the hold', async () =>
            (await readJournal(journalPath).catch(() => [])).some(
              (e) => e.type === 'phase' && e.phase === 'holding',
            ),
          )
          await writeBlocks(r, src.split('/')[1] as string, extents, rep)
          const rec = await recordCpu(names)
          const stop = during(`${method}-${rep}`)
          await requestCutover(journalPath)
          const res = await run.done
          await stop()
          cpu = await rec.stop()
          if (res.code !== 0) throw new Error(`snapferry run exited ${res.code}: ${res.err}`)
          const journal = await readJournal(journalPath)
          const stats = journal.flatMap((e) => (e.type === 'round-completed' ? [e.stats] : []))
          const final = stats.at(-1)
          if (!final || final.round === 0) throw new Error('no final round in the journal')
          deltaMs = final.totalMs
          phases = final.applyPhasesMs
          snap = final.toSnap
          delta = { extents: final.extents, bytes: final.dataBytes + final.zeroBytes }
        }
        const [a, b] = await Promise.all([
          imageSha256(r.a, `${src}@${snap}`),
          imageSha256(r.b, `${dst}@${snap}`),
        ])
        const run: ProbeRun = {
          method,
          rep,
          extents,
          deltaMs,
          delta,
          identical: a === b,
          cpu,
          applyPhasesMs: phases,
        }
        runs.push(run)
        const groups = Object.entries(cpu.groups)
          .filter(([, s]) => s >= 0.02)
          .sort((x, y) => y[1] - x[1])
          .map(([g, s]) => `${g} ${((s * 1000) / delta.extents).toFixed(3)}`)
          .join(', ')
        console.log(
          `${method} #${rep}: ${delta.extents} extents (${(delta.bytes / 2 ** 20).toFixed(1)} MiB) in ${(deltaMs / 1000).toFixed(2)} s, ${a === b ? 'identical' : 'DIFFERENT'}; busy ${((cpu.busyS * 1000) / delta.extents).toFixed(3)} CPU-ms/extent (whole machine); per group CPU-ms/extent: ${groups}${phases ? `; apply ${JSON.stringify(phases)}` : ''}`,
        )
        await removeImage(r.a, src)
        await removeImage(r.b, dst)
      }
    }
  } finally {
    await writeFile(path.join(work, 'delta-probe.json'), JSON.stringify(runs, null, 2))
    await r.stop()
    console.log(`results: ${path.join(work, 'delta-probe.json')}`)
  }
}

await main()
