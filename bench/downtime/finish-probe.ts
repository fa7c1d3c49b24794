/**
 * Why a final round's `import-diff` finishes long after its last byte arrived: on one bluestore cluster,
 * a delta of unique random 4 KiB extents (like the live writer's) is fed to `rbd import-diff -` from
 * this process, at full speed (as in a final round, the export running ahead of the destination) and
 * paced (as in a warm round, the export held back by the workload), with librbd's default cache
 * (`writearound`: a write is acknowledged before the OSD has it, up to `rbd_cache_max_dirty`) and with
 * it off. Each case reports when the last byte was taken (`delta written`) and when import-diff exited
 * (`import-diff done`, after its end snapshot).
 *
 * usage: node dist/bench/downtime/finish-probe.js [EXTENTS=1500] [PACE_PER_S=1400] [REPEAT=2]
 */
import { execFile, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { END_RECORD, encodeExtentHead, encodeHeaderV1 } from '../../src/delta-format/diff-encoder.js'

const run = promisify(execFile)
const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../..')
const extents = Number(process.argv[2] ?? '1500')
const pace = Number(process.argv[3] ?? '1400')
const repeat = Number(process.argv[4] ?? '2')
const SIZE = 1 << 30

interface Case {
  readonly name: string
  readonly paced: boolean
  readonly cache: boolean
}
const CASES: readonly Case[] = [
  { name: 'full speed, cache on (default)', paced: false, cache: true },
  { name: `paced at ${pace}/s, cache on (default)`, paced: true, cache: true },
  { name: 'full speed, cache off', paced: false, cache: false },
]

/** A delta from `from` to `to` of unique random 4 KiB extents, in order. */
function delta(from: string, to: string): Buffer[] {
  const blocks = new Set<number>()
  while (blocks.size < extents) blocks.add(Math.floor(Math.random() * (SIZE / 4096)))
  const out = [encodeHeaderV1({ fromSnap: from, toSnap: to, size: SIZE })]
  for (const b of [...blocks].sort((x, y) => x - y))
    out.push(encodeExtentHead('write', b * 4096, 4096), randomBytes(4096))
  out.push(END_RECORD)
  return out
}

async function feed(conf: string, c: Case, from: string, to: string) {
  const chunks = delta(from, to)
  const args = ['--conf', conf, ...(c.cache ? [] : ['--rbd_cache=false']), 'import-diff', '--no-progress']
  const p = spawn('rbd', [...args, '-', 'rbd/probe'], { stdio: ['pipe', 'ignore', 'inherit'] })
  const exited = new Promise<number>((resolve) => p.on('exit', (code) => resolve(code ?? -1)))
  // Like snapferry's early start: connected and waiting on stdin before the delta arrives.
  await new Promise((r) => setTimeout(r, 400))
  const t0 = performance.now()
  const write = (b: Buffer) =>
    p.stdin.write(b) ? undefined : new Promise<void>((r) => p.stdin.once('drain', () => r()))
  for (let i = 0; i < chunks.length; i++) {
    if (c.paced) {
      const due = t0 + (Math.floor((i - 1) / 2) * 1000) / pace
      if (due > performance.now()) await new Promise((r) => setTimeout(r, due - performance.now()))
    }
    await write(chunks[i] as Buffer)
  }
  const written = performance.now() - t0
  p.stdin.end()
  const code = await exited
  if (code !== 0) throw new Error(`import-diff exited ${code}`)
  return { written, done: performance.now() - t0 }
}

async function main(): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'sf-finish-probe-'))
  const script = path.join(ROOT, 'scripts/ceph-dev-cluster.sh')
  const env = { ...process.env, SNAPFERRY_CEPH_DIR: dir }
  try {
    const { stdout } = await run('bash', [script, 'start', 'finishprobe', '7600', 'bluestore'], { env })
    const conf = stdout.trim().split('\n').pop() as string
    await run('rbd', ['--conf', conf, 'create', '--size', `${SIZE}B`, 'rbd/probe'])
    await run('rbd', ['--conf', conf, 'snap', 'create', '--no-progress', 'rbd/probe@s0'])
    console.log(`${extents} unique random 4 KiB extents into rbd import-diff - (one bluestore OSD), ms:\n`)
    console.log('| case | delta written | import-diff done | finish | extents/s overall |')
    console.log('| --- | --- | --- | --- | --- |')
    let k = 0
    for (let r = 0; r < repeat; r++)
      for (const c of CASES) {
        const { written, done } = await feed(conf, c, `s${k}`, `s${k + 1}`)
        k++
        const perS = Math.round(extents / (done / 1000))
        console.log(
          `| ${c.name} | ${Math.round(written)} | ${Math.round(done)} | ${Math.round(done - written)} | ${perS} |`,
        )
      }
  } finally {
    await run('bash', [script, 'stop', 'finishprobe'], { env }).catch(() => {})
    await rm(dir, { recursive: true, force: true })
  }
}

await main()
