/**
 * Where a final round's time goes when it is made of small extents: on the downtime bench's two regions,
 * a delta made by the live writer (unique random 4 KiB blocks) is exported and imported piece by piece,
 * each variant timed alone: export-diff to /dev/null, import-diff of a file (parallel) and of stdin
 * (serial), at rbd's default queue depth and at a deeper one, and the whole manual pipe over SSH; then
 * what the destination's pre-apply reads cost as rbd processes against one open librbd session.
 *
 * usage: node dist/bench/downtime/extent-probe.js [WRITER_MiBps=2] [SECONDS=4] [LINK=100mbit|unshaped]
 */
import { spawn } from 'node:child_process'
import { mkdtemp, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { median } from '../../src/convergence/predictor.js'
import { startCephRegions } from '../lib/ceph-regions.js'
import { GiB, MiB } from './scenario.js'
import { makeSourceImage, removeImage, startWriter } from './workload.js'

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../..')
const rate = Number(process.argv[2] ?? '2') * MiB
const seconds = Number(process.argv[3] ?? '4')
const link = process.argv[4] === 'unshaped' ? undefined : (process.argv[4] ?? '100mbit')

function sh(ns: string, script: string, ...args: string[]): Promise<number> {
  const t0 = performance.now()
  return new Promise((resolve, reject) => {
    const p = spawn('ip', ['netns', 'exec', ns, 'bash', '-c', script, 'probe', ...args], {
      stdio: ['ignore', 'inherit', 'inherit'],
    })
    p.on('close', (c) =>
      c === 0 ? resolve(performance.now() - t0) : reject(new Error(`${script}: exit ${c}`)),
    )
  })
}

/**
 * What the destination's pre-apply reads (size, snapshots, apply marker) cost as three `rbd` processes,
 * as snapferry runs them today, against the same reads in one open librbd session (python3-rbd, which
 * ceph-common depends on): the fix the bench's narrative names for the warm rounds' overhead.
 */
async function checkReadCosts(ns: string, conf: string, spec: string): Promise<string[]> {
  const cli: number[] = []
  for (let i = 0; i < 5; i++)
    cli.push(
      await sh(
        ns,
        'rbd --conf "$1" info "$2" >/dev/null & rbd --conf "$1" snap ls "$2" >/dev/null & ' +
          '(rbd --conf "$1" image-meta get "$2" snapferry.applying >/dev/null 2>&1; true) & wait',
        conf,
        spec,
      ),
    )
  const [pool, image] = spec.split('/') as [string, string]
  const out = await new Promise<string>((resolve, reject) => {
    const p = spawn('ip', ['netns', 'exec', ns, '/usr/bin/python3', '-c', LIBRBD_READS, conf, pool, image], {
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    let text = ''
    p.stdout.on('data', (b: Buffer) => {
      text += b.toString()
    })
    p.on('close', (c) => (c === 0 ? resolve(text) : reject(new Error(`librbd reads: exit ${c}`))))
  })
  const r = JSON.parse(out) as { startMs: number; connectMs: number; readsMs: number[] }
  return [
    `| destination reads as 3 parallel rbd processes (info, snap ls, image-meta get), median of 5 | ${(median(cli) / 1000).toFixed(3)} s |`,
    `| the same reads in one open librbd session (python3-rbd), median of 5 | ${(median(r.readsMs) / 1000).toFixed(3)} s |`,
    `| that session's start: python3 with rbd imported / cluster connected (once per agent) | ${(r.startMs / 1000).toFixed(2)} s / ${(r.connectMs / 1000).toFixed(2)} s |`,
  ]
}

const LIBRBD_READS = `
import json, sys, time
t0 = time.perf_counter()
import rados, rbd
conf, pool, image = sys.argv[1:4]
started = time.perf_counter()
c = rados.Rados(conffile=conf)
c.connect()
io = c.open_ioctx(pool)
connected = time.perf_counter()
reads = []
for _ in range(5):
    t = time.perf_counter()
    with rbd.Image(io, image, read_only=True) as im:
        im.size()
        [s['name'] for s in im.list_snaps()]
        try:
            im.metadata_get('snapferry.applying')
        except KeyError:
            pass
    reads.append((time.perf_counter() - t) * 1000)
io.close()
c.shutdown()
print(json.dumps({'startMs': (started - t0) * 1000, 'connectMs': (connected - started) * 1000, 'readsMs': reads}))
`

const work = await mkdtemp(path.join(tmpdir(), 'sf-extent-probe-'))
const regions = await startCephRegions(ROOT)
const rows: string[] = []
try {
  await regions.hosts.shape(link)
  const { a, b, hosts } = regions
  const src = 'rbd/probe-src'
  await makeSourceImage(a, src, GiB)
  // Like a late warm round: the writer has run a while (first writes past an object's end, which
  // Pacific over-reports, are behind it), s0 is taken, the writer runs SECONDS more and stops, then s1.
  const writer = await startWriter(a, ROOT, 'rbd', 'probe-src', rate, work)
  await new Promise((r) => setTimeout(r, 30_000))
  await a.rbd('snap', 'create', '--no-progress', `${src}@s0`)
  await new Promise((r) => setTimeout(r, seconds * 1000))
  await sh(a.ns, 'exec "$1" "$2"', path.join(ROOT, 'bench/downtime/stop-writer.sh'), writer.pidFile)
  await writer.kill()
  await a.rbd('snap', 'create', '--no-progress', `${src}@s1`)
  const baseFile = path.join(work, 'base.diff')
  await sh(a.ns, 'rbd --conf "$1" export-diff --no-progress "$2@s0" "$3"', a.conf, src, baseFile)
  const delta = path.join(work, 'delta.diff')
  const exportMs = await sh(
    a.ns,
    'rbd --conf "$1" export-diff --no-progress --from-snap s0 "$2@s1" "$3"',
    a.conf,
    src,
    delta,
  )
  const extents = Number(
    (await a.rbd('diff', '--from-snap', 's0', `${src}@s1`, '--format', 'json')).match(/"offset"/g)?.length ??
      0,
  )
  const mib = ((await stat(delta)).size / MiB).toFixed(1)
  rows.push(`| export-diff → file (queue depth 10) | ${(exportMs / 1000).toFixed(2)} s |`)
  for (const depth of [10, 32]) {
    const ms = await sh(
      a.ns,
      'rbd --conf "$1" --rbd-concurrent-management-ops "$3" export-diff --no-progress --from-snap s0 "$2@s1" - > /dev/null',
      a.conf,
      src,
      String(depth),
    )
    rows.push(`| export-diff → /dev/null (queue depth ${depth}) | ${(ms / 1000).toFixed(2)} s |`)
  }
  // Each import variant on its own fresh destination at s0.
  let n = 0
  const fresh = async () => {
    const spec = `rbd/probe-dst-${n++}`
    await removeImage(b, spec)
    await b.rbd('create', '--size', `${GiB}B`, spec)
    // Both namespaces share the filesystem: the base goes in locally, not over the link.
    await sh(b.ns, 'rbd --conf "$1" import-diff --no-progress "$3" "$2"', b.conf, spec, baseFile)
    return spec
  }
  // The delta file on B's side, so imports are timed without the link.
  const remote = path.join(work, 'delta-on-b.diff')
  await sh(b.ns, 'cp "$1" "$2"', delta, remote)
  for (const [label, script] of [
    ['import-diff < stdin (serial)', 'rbd --conf "$1" import-diff --no-progress - "$2" < "$3"'],
    ['import-diff FILE (queue depth 10)', 'rbd --conf "$1" import-diff --no-progress "$3" "$2"'],
    [
      'import-diff FILE (queue depth 32)',
      'rbd --conf "$1" --rbd-concurrent-management-ops 32 import-diff --no-progress "$3" "$2"',
    ],
    [
      'import-diff /dev/stdin from a pipe (queue depth 10)',
      'cat "$3" | rbd --conf "$1" import-diff --no-progress /dev/stdin "$2"',
    ],
  ] as const) {
    const spec = await fresh()
    const ms = await sh(b.ns, script, b.conf, spec, remote)
    rows.push(`| ${label} | ${(ms / 1000).toFixed(2)} s |`)
  }
  const sshB = `ssh -i ${hosts.identity} -o UserKnownHostsFile=${hosts.knownHosts} -o BatchMode=yes root@${hosts.ipB}`
  rows.push(`| ssh B true (session start-up) | ${((await sh(a.ns, `${sshB} true`)) / 1000).toFixed(2)} s |`)
  rows.push(
    `| cat delta \\| ssh B 'cat > /dev/null' (the link alone) | ${((await sh(a.ns, `${sshB} 'cat > /dev/null' < "$1"`, delta)) / 1000).toFixed(2)} s |`,
  )
  {
    const spec = await fresh()
    const ms = await sh(
      a.ns,
      `${sshB} rbd --conf "$2" import-diff --no-progress - "$3" < "$1"`,
      delta,
      b.conf,
      spec,
    )
    rows.push(`| cat delta \\| ssh B import-diff - (link and serial import) | ${(ms / 1000).toFixed(2)} s |`)
  }
  for (const [label, dst] of [
    ['manual pipe: export-diff | ssh | import-diff -', '-'],
    ['export-diff | ssh | import-diff /dev/stdin (parallel)', '/dev/stdin'],
  ] as const) {
    const spec = await fresh()
    const ms = await sh(
      a.ns,
      `rbd --conf "$1" export-diff --no-progress --from-snap s0 "$2@s1" - | ssh -i ${hosts.identity} -o UserKnownHostsFile=${hosts.knownHosts} -o BatchMode=yes root@${hosts.ipB} rbd --conf "$3" import-diff --no-progress "$5" "$4"`,
      a.conf,
      src,
      b.conf,
      spec,
      dst,
    )
    rows.push(`| ${label} | ${(ms / 1000).toFixed(2)} s |`)
  }
  rows.push(...(await checkReadCosts(b.ns, b.conf, await fresh())))
  console.log(
    `\ndelta: ${extents} extents, ${mib} MiB, written at ${rate / MiB} MiB/s for ${seconds} s; link ${link ?? 'unshaped'}; ${new Date().toISOString()}`,
  )
  console.log('| step | time |\n|---|---|')
  for (const r of rows) console.log(r)
} finally {
  await regions.stop()
  await rm(work, { recursive: true, force: true })
}
