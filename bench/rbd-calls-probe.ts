/**
 * What one short rbd call costs through the rbd CLI (a process and a cluster connection each) and in the
 * open librbd session, call for call, on a fresh one-mon one-OSD cluster: the figures in docs/RBD.md.
 *
 * usage: node dist/bench/rbd-calls-probe.js [REPEATS=7] [IMAGE_MiB=1024] [memstore|bluestore]
 */
import { execFile } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { median } from '../src/convergence/predictor.js'
import { LibrbdImage } from '../src/drivers/rbd/librbd-image.js'
import type { RbdConnection } from '../src/drivers/rbd/rbd-cli.js'
import { RbdImage, type RbdImageCalls } from '../src/drivers/rbd/rbd-image.js'

const run = promisify(execFile)
const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..')
const repeats = Number(process.argv[2] ?? '7')
const sizeMiB = Number(process.argv[3] ?? '1024')
const store = process.argv[4] === 'bluestore' ? 'bluestore' : 'memstore'

const dir = await mkdtemp(path.join(tmpdir(), 'sf-rbd-calls-'))
const env = { ...process.env, SNAPFERRY_CEPH_DIR: dir }
const script = path.join(ROOT, 'scripts/ceph-dev-cluster.sh')
const name = `calls${process.pid}`
try {
  const { stdout } = await run('bash', [script, 'start', name, '9850', store], { env, timeout: 180_000 })
  const conn: RbdConnection = { conf: stdout.trim().split('\n').pop() as string, timeoutSeconds: 30 }
  const rbd = (...a: string[]) => run('rbd', ['--conf', conn.conf as string, ...a], { maxBuffer: 64 << 20 })
  const spec = 'rbd/probe'
  await rbd('create', '--size', `${sizeMiB}M`, spec)
  const randomWrites = (total: string) =>
    rbd(
      'bench',
      '--io-type',
      'write',
      '--io-size',
      '4096',
      '--io-threads',
      '4',
      '--io-total',
      total,
      '--io-pattern',
      'rand',
      spec,
    )
  // Data, a snapshot and changes since it, so listings and diffs have something to say.
  await randomWrites('8M')
  await rbd('snap', 'create', `${spec}@s0`)
  await randomWrites('2M')

  const calls: [string, (i: RbdImageCalls, k: number) => Promise<unknown>][] = [
    ['size (`rbd info`)', (i) => i.size()],
    ['snapshots (`rbd snap ls`)', (i) => i.snapshots()],
    ['image-meta get', (i) => i.metaGet('snapferry.applying')],
    ['image-meta set', (i) => i.metaSet('probe.key', 'v')],
    ['head guard: diff --from-snap --whole-object', (i) => i.diff('s0', undefined, { wholeObject: true })],
    ['exact diff --from-snap (pending-bytes estimate)', (i) => i.diff('s0')],
    [
      "the destination's pre-apply reads, in parallel",
      (i) => Promise.all([i.size(), i.snapshots(), i.metaGet('snapferry.applying')]),
    ],
    [
      'snap create + snap rm',
      async (i, k) => {
        await i.snapCreate(`p${k}`)
        await i.snapRemove(`p${k}`)
      },
    ],
  ]
  const cli = new RbdImage(conn, spec, 'probe')
  const lib = new LibrbdImage(conn, spec, 'probe')
  const t0 = performance.now()
  await lib.size()
  const startMs = performance.now() - t0
  const rows: string[] = []
  let k = 0
  for (const [label, f] of calls) {
    const times: Record<string, number[]> = { cli: [], lib: [] }
    // Interleaved, so a change in the host's speed hits both alike.
    for (let r = 0; r < repeats; r++)
      for (const [which, img] of [
        ['cli', cli],
        ['lib', lib],
      ] as const) {
        const t = performance.now()
        await f(img, k++)
        times[which]?.push(performance.now() - t)
      }
    const [c, l] = [median(times.cli ?? []), median(times.lib ?? [])]
    rows.push(`| ${label} | ${c.toFixed(0)} ms | ${l.toFixed(0)} ms | ${(c / l).toFixed(1)}× |`)
  }
  console.log(
    `\n${new Date().toISOString()}: ${sizeMiB} MiB image on a one-mon one-OSD ${store} cluster, median of ${repeats} (interleaved); session start ${startMs.toFixed(0)} ms once\n`,
  )
  console.log('| call | rbd CLI | librbd session | ratio |\n|---|---|---|---|')
  for (const r of rows) console.log(r)
} finally {
  await run('bash', [script, 'stop', name], { env }).catch(() => {})
  await rm(dir, { recursive: true, force: true })
}
