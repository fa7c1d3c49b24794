/**
 * npm run bench — the file driver against the baselines an operator would use without snapferry, measured
 * side by side in one run on the same images: `cp --sparse=always` for the first copy, and a full re-copy
 * for each later sync. Prints a markdown table for docs/BENCHMARKS.md.
 * Usage: node dist/bench/run-bench.js [SIZE_MiB=1024] [DIR=/tmp/snapferry-bench]
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdir, open, rm } from 'node:fs/promises'
import path from 'node:path'
import { writeVmLikeImage } from '../examples/lib/vm-like-image.js'
import { formatBytes } from '../src/config/units.js'
import { FileDriver } from '../src/drivers/file/file-driver.js'
import { relayDelta } from '../src/replication/relay-delta.js'
import { sshBench, sshTable } from './ssh-bench.js'

const sizeMiB = Number(process.argv[2] ?? 1024)
const dir = process.argv[3] ?? '/tmp/snapferry-bench'
const size = sizeMiB << 20

interface Measure {
  readonly wallMs: number
  readonly cpuMs: number
}

async function measure(fn: () => Promise<unknown> | unknown): Promise<Measure> {
  const c0 = process.cpuUsage()
  const t0 = performance.now()
  await fn()
  const c = process.cpuUsage(c0)
  return { wallMs: performance.now() - t0, cpuMs: (c.user + c.system) / 1000 }
}

/** A child process's wall and CPU time (the baselines run as the commands operators would type). */
function measureCmd(cmd: string, args: string[]): Measure {
  const t0 = performance.now()
  // bash's `time` keyword reports the child's user and system CPU seconds on stderr.
  const r = spawnSync('bash', ['-c', 'TIMEFORMAT="%U %S"; time "$@" >/dev/null', 'bench', cmd, ...args], {
    encoding: 'utf8',
  })
  if (r.status !== 0) throw new Error(`${cmd} failed: ${r.stderr}`)
  const [u, s] = r.stderr.trim().split('\n').pop()?.split(' ').map(Number) ?? [0, 0]
  return { wallMs: performance.now() - t0, cpuMs: ((u ?? 0) + (s ?? 0)) * 1000 }
}

async function scribble(file: string, writes: number): Promise<void> {
  const fh = await open(file, 'r+')
  for (let i = 0; i < writes; i++)
    await fh.write(randomBytes(4096), 0, 4096, Math.floor(Math.random() * (size / 4096)) * 4096)
  await fh.close()
}

function dropCaches(): void {
  try {
    execFileSync('sync')
    execFileSync('sh', ['-c', 'echo 3 > /proc/sys/vm/drop_caches'], { stdio: 'ignore' })
  } catch {
    // not permitted here: figures are then page-cache figures, as the table says
  }
}

await rm(dir, { recursive: true, force: true })
await mkdir(dir, { recursive: true })
const src = path.join(dir, 'src.img')
await writeVmLikeImage(src, size)
const rows: string[] = []
/** `cp` moves the allocated bytes of the image; snapferry moves its diff stream. */
const row = (
  what: string,
  snap: Measure,
  snapBytes: number,
  base: Measure,
  baseName: string,
  baseBytes: number,
  note = '',
) =>
  rows.push(
    `| ${what} | ${(snap.wallMs / 1000).toFixed(2)} s | ${baseName} ${(base.wallMs / 1000).toFixed(2)} s | ${(base.wallMs / snap.wallMs).toFixed(2)}× | ${formatBytes(snapBytes)} vs ${formatBytes(baseBytes)}: **${(baseBytes / snapBytes).toFixed(1)}×** | ${(snap.cpuMs / 1000 / (size / 1e9)).toFixed(2)} vs ${(base.cpuMs / 1000 / (size / 1e9)).toFixed(2)} | ${note} |`,
  )
const allocated = () => Number(execFileSync('du', ['--block-size=1', src]).toString().split('\t')[0])

for (const bs of [64 * 1024, 16 * 1024, 4096]) {
  const dst = path.join(dir, `dst-${bs}.img`)
  const a = new FileDriver({ path: src, blockSize: bs, stateDir: path.join(dir, `src-${bs}.state`) })
  const b = new FileDriver({ path: dst, blockSize: bs })
  const ship = async (from: string | undefined, to: string) => {
    await a.createSnapshot(to)
    return relayDelta({
      source: a,
      destination: b,
      label: 'bench',
      exportRequest: { fromSnap: from, toSnap: to },
      importRequest: { fromSnap: from, toSnap: to },
    })
  }
  dropCaches()
  let base: Awaited<ReturnType<typeof ship>> | undefined
  const mBase = await measure(async () => {
    base = await ship(undefined, 'snapferry-base')
  })
  dropCaches()
  const mCp = measureCmd('cp', ['--sparse=always', src, path.join(dir, 'cp.img')])
  row(
    `first copy, ${bs / 1024} KiB blocks`,
    mBase,
    base?.exported.streamBytes ?? 0,
    mCp,
    'cp --sparse',
    allocated(),
    `records ${formatBytes((size / bs) * 16)}`,
  )
  await scribble(src, 2000)
  dropCaches()
  let delta: Awaited<ReturnType<typeof ship>> | undefined
  const mDelta = await measure(async () => {
    delta = await ship('snapferry-base', 'snapferry-d1')
  })
  dropCaches()
  const mRecopy = measureCmd('cp', ['--sparse=always', src, path.join(dir, 'cp.img')])
  const scanRate = (delta?.exported.scannedBytes ?? 0) / ((delta?.exported.durationMs ?? 1) / 1000)
  row(
    `sync after 2,000 random 4 KiB writes, ${bs / 1024} KiB blocks`,
    mDelta,
    delta?.exported.streamBytes ?? 0,
    mRecopy,
    'full re-copy',
    allocated(),
    `${delta?.exported.extents} extents; scan ${(scanRate / 1e6).toFixed(0)} MB/s`,
  )
  const [x, y] = await Promise.all([a.checksum('head'), b.checksum('head')])
  if (x.digest !== y.digest) throw new Error(`bench copy differs at block size ${bs}`)
  await rm(dst, { force: true })
  await rm(`${dst}.snapferry`, { recursive: true, force: true })
  await rm(path.join(dir, `src-${bs}.state`), { recursive: true, force: true })
}
await rm(dir, { recursive: true, force: true })

console.log(
  `\nfile driver, ${formatBytes(size)} VM-like image (30 % holes, 30 % random, 40 % text), node ${process.version}, ${new Date().toISOString()}`,
)
console.log(
  '| operation | snapferry | baseline | time ratio (baseline ÷ snapferry) | bytes moved (snapferry vs baseline): ratio | CPU s per GB of image (snapferry vs baseline) | notes |',
)
console.log('|---|---|---|---|---|---|---|')
for (const r of rows) console.log(r)
console.log(
  `peak RSS of this process (source, relay and destination together): ${formatBytes(process.resourceUsage().maxRSS * 1024)}`,
)

// Over SSH between two network namespaces (root only): snapferry's relay against cat | ssh | dd.
console.log(
  '\nover SSH between two hosts (network namespaces, sshd each), snapferry relay vs `cat | ssh | dd`:',
)
const ssh = await sshBench()
console.log(typeof ssh === 'string' ? ssh : sshTable(ssh))
