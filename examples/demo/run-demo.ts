/**
 * npm run demo: the main job end to end on the embedded default. Makes a 512 MiB VM-like image, starts a
 * live writer at 2 MiB/s, runs examples/demo/pipeline.yaml with the snapferry CLI (local agents, file
 * driver) until it converges and cuts over, then checks the copy independently and prints a report.
 */
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { mkdir, rm } from 'node:fs/promises'
import path from 'node:path'
import { pipeline } from 'node:stream/promises'
import { fileURLToPath } from 'node:url'
import { formatBytes, formatDuration, formatRate } from '../../src/config/units.js'
import { readJournal } from '../../src/state/journal.js'
import { summarize } from '../../src/state/run-summary.js'
import { writeVmLikeImage } from '../lib/vm-like-image.js'

const root = fileURLToPath(new URL('../../../', import.meta.url))
const demo = path.join(root, 'examples/demo')
const work = path.join(demo, 'work')
const SIZE = 512 << 20
const RATE = 2 << 20

async function sha256(file: string): Promise<string> {
  const h = createHash('sha256')
  await pipeline(createReadStream(file, { highWaterMark: 1 << 20 }), h)
  return h.digest('hex')
}

function run(cmd: string, args: string[], opts: { stdio?: 'inherit' | 'ignore' } = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { cwd: root, stdio: opts.stdio ?? 'inherit' })
    p.on('error', reject)
    p.on('exit', (code) => resolve(code ?? 1))
  })
}

await rm(work, { recursive: true, force: true })
await mkdir(work, { recursive: true })
const src = path.join(work, 'source.img')
const dst = path.join(work, 'destination.img')
console.log(
  `demo: writing a ${formatBytes(SIZE)} VM-like image (data, text, holes) to ${path.relative(root, src)}`,
)
await writeVmLikeImage(src, SIZE)
console.log(`demo: starting a live writer: unique random 4 KiB blocks at ${formatRate(RATE)}`)
const writer = spawn(
  process.execPath,
  [path.join(root, 'dist/examples/demo/live-writer.js'), src, String(RATE), path.join(work, 'writer.pid')],
  {
    stdio: ['ignore', 'inherit', 'inherit'],
  },
)
await new Promise((r) => setTimeout(r, 500))
console.log('demo: $ snapferry run examples/demo/pipeline.yaml\n')
const t0 = performance.now()
const code = await run(process.execPath, [
  path.join(root, 'dist/src/cli/main.js'),
  'run',
  path.join(demo, 'pipeline.yaml'),
])
const elapsed = performance.now() - t0
writer.kill('SIGTERM')

const [a, b] = await Promise.all([sha256(src), sha256(dst).catch(() => 'missing')])
const s = summarize('demo', ['disk'], await readJournal(path.join(work, 'state')), null)
const shipped = s.rounds.reduce((n, r) => n + r.streamBytes, 0)
const deltas = s.rounds.filter((r) => r.kind === 'delta')
console.log('\n--- demo report ---')
console.log(`rounds:            1 base + ${deltas.length} delta (the last one during the cutover)`)
console.log(
  `bytes shipped:     ${formatBytes(shipped)} in all (base ${formatBytes(s.rounds[0]?.streamBytes ?? 0)}, deltas ${deltas.map((r) => formatBytes(r.changedBytes)).join(', ')})`,
)
if (s.cutover) {
  console.log(
    `cutover window:    predicted ${s.cutover.predictedMs === null ? 'n/a' : formatDuration(s.cutover.predictedMs)}, actual ${formatDuration(s.cutover.downtimeMs)} (${s.cutover.status})`,
  )
}
console.log(`total time:        ${formatDuration(elapsed)}`)
console.log(`source sha256:      ${a}`)
console.log(`destination sha256: ${b}`)
const ok = code === 0 && a === b && s.cutover?.status === 'ok'
console.log(
  ok
    ? 'demo: OK — the destination is byte-identical to the stopped source'
    : `demo: FAILED (snapferry exit ${code})`,
)
process.exit(ok ? 0 : 1)
