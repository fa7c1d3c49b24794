/**
 * rbd: what is fastest where it matters (issue "Real Ceph"). On one delta of many small random extents:
 * export-diff exact vs --whole-object (bytes vs extents), and import-diff from stdin (serial) vs from a
 * staged file (parallel writes). Side by side, same delta, same clusters.
 * Usage: node dist/bench/rbd-apply-bench.js SRC_CONF DST_CONF [IMAGE_MiB=1024] [DELTA_MiB=32]
 */
import { spawn, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { rm, stat, writeFile } from 'node:fs/promises'
import { formatBytes } from '../src/config/units.js'
import { encodeDiffV1 } from '../src/delta-format/diff-encoder.js'
import type { DataRecord } from '../src/delta-format/diff-records.js'

const [srcConf, dstConf, imageArg = '1024', deltaArg = '32'] = process.argv.slice(2)
if (!srcConf || !dstConf) throw new Error('usage: rbd-apply-bench SRC_CONF DST_CONF [IMAGE_MiB] [DELTA_MiB]')
const size = Number(imageArg) << 20
const deltaBytes = Number(deltaArg) << 20

function rbd(conf: string, ...args: string[]): string {
  const r = spawnSync('rbd', ['--conf', conf, ...args], { encoding: 'latin1', maxBuffer: 1 << 30 })
  if (r.status !== 0) throw new Error(`rbd ${args.join(' ')}: ${r.stderr}`)
  return r.stdout
}
function timed(fn: () => void): number {
  const t0 = performance.now()
  fn()
  return performance.now() - t0
}
async function importFromStdin(conf: string, file: string, spec: string): Promise<number> {
  const t0 = performance.now()
  await new Promise<void>((resolve, reject) => {
    const p = spawn(
      'sh',
      ['-c', 'exec rbd --conf "$0" import-diff --no-progress - "$1" < "$2"', conf, spec, file],
      { stdio: 'inherit' },
    )
    p.on('close', (c) => (c === 0 ? resolve() : reject(new Error(`import-diff exit ${c}`))))
  })
  return performance.now() - t0
}

const src = `rbd/bench-src-${process.pid}`
rbd(srcConf, 'create', '--size', `${size}B`, src)
// Allocate every object first, as a used VM disk is: otherwise Pacific reports whole objects as changed.
rbd(
  srcConf,
  'bench',
  '--io-type',
  'write',
  '--io-pattern',
  'seq',
  '--io-size',
  '4M',
  '--io-total',
  `${size}B`,
  src,
)
// A delta of unique random 4 KiB blocks at random aligned offsets: the shape of a VM's small writes.
const blocks = deltaBytes / 4096
const offsets = new Set<number>()
while (offsets.size < blocks) offsets.add(Math.floor(Math.random() * (size / 4096)) * 4096)
const records: DataRecord[] = [...offsets]
  .sort((a, b) => a - b)
  .map((o) => ({ kind: 'write', offset: o, data: randomBytes(4096) }))
const writes: Buffer[] = []
for await (const b of encodeDiffV1({ size }, records)) writes.push(b)
await writeFile('/tmp/sf-bench-writes.diff', Buffer.concat(writes))
rbd(srcConf, 'snap', 'create', '--no-progress', `${src}@snapferry-0000-b`)
spawnSync('sh', ['-c', `rbd --conf "${srcConf}" import-diff --no-progress /tmp/sf-bench-writes.diff ${src}`])
rbd(srcConf, 'snap', 'create', '--no-progress', `${src}@snapferry-0001-b`)

const rows: string[] = []
const exact = '/tmp/sf-bench-exact.diff'
const whole = '/tmp/sf-bench-whole.diff'
const tExact = timed(() =>
  spawnSync('sh', [
    '-c',
    `rbd --conf "${srcConf}" export-diff --no-progress --from-snap snapferry-0000-b ${src}@snapferry-0001-b ${exact}`,
  ]),
)
const tWhole = timed(() =>
  spawnSync('sh', [
    '-c',
    `rbd --conf "${srcConf}" export-diff --no-progress --whole-object --from-snap snapferry-0000-b ${src}@snapferry-0001-b ${whole}`,
  ]),
)
const [sExact, sWhole] = [(await stat(exact)).size, (await stat(whole)).size]
rows.push(
  `| export-diff, exact extents | ${(tExact / 1000).toFixed(2)} s | ${formatBytes(sExact)} | baseline |`,
)
rows.push(
  `| export-diff --whole-object | ${(tWhole / 1000).toFixed(2)} s | ${formatBytes(sWhole)} | ${(tExact / tWhole).toFixed(2)}× faster, ${(sWhole / sExact).toFixed(1)}× the bytes |`,
)

// Import the same exact delta into two destinations at the base state: stdin vs staged file.
const base = '/tmp/sf-bench-base.diff'
spawnSync('sh', ['-c', `rbd --conf "${srcConf}" export-diff --no-progress ${src}@snapferry-0000-b ${base}`])
const d1 = `rbd/bench-dst1-${process.pid}`
const d2 = `rbd/bench-dst2-${process.pid}`
for (const d of [d1, d2]) {
  rbd(dstConf, 'create', '--size', `${size}B`, d)
  spawnSync('sh', ['-c', `rbd --conf "${dstConf}" import-diff --no-progress ${base} ${d}`])
}
const tStdin = await importFromStdin(dstConf, exact, d1)
const tFile = timed(() => rbd(dstConf, 'import-diff', '--no-progress', exact, d2))
rows.push(
  `| import-diff from stdin (serial) | ${(tStdin / 1000).toFixed(2)} s | ${blocks} extents | baseline |`,
)
rows.push(
  `| import-diff from a staged file (parallel) | ${(tFile / 1000).toFixed(2)} s | ${blocks} extents | **${(tStdin / tFile).toFixed(2)}×** faster |`,
)

for (const spec of [src, d1, d2]) {
  const conf = spec === src ? srcConf : dstConf
  spawnSync('rbd', ['--conf', conf, 'snap', 'purge', '--no-progress', spec])
  spawnSync('rbd', ['--conf', conf, 'rm', '--no-progress', spec])
}
for (const f of [exact, whole, base, '/tmp/sf-bench-writes.diff']) await rm(f, { force: true })
console.log(
  `\nrbd, ${formatBytes(size)} image, delta of ${blocks} random 4 KiB blocks (${formatBytes(deltaBytes)}), one-OSD clusters, ${new Date().toISOString()}`,
)
console.log('| operation | time | size | ratio |')
console.log('|---|---|---|---|')
for (const r of rows) console.log(r)
