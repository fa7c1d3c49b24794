/** The source image every method starts from, and the live writer that stands in for the VM. */
import { type ChildProcess, spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { readFile, rm } from 'node:fs/promises'
import path from 'node:path'
import { encodeDiffV1 } from '../../src/delta-format/diff-encoder.js'
import type { Region } from '../lib/ceph-regions.js'
import { MiB, type WriterRate } from './scenario.js'

/** Data written before the move starts: 512 MiB spread evenly over the image (VM-like mix). */
export const SEED_BYTES = 512 * MiB

function seedChunk(i: number): Buffer {
  const kind = i % 3
  if (kind === 0) return Buffer.alloc(MiB) // zero-filled data blocks (written, so allocated)
  if (kind === 1)
    return Buffer.from(
      `Nov 22 10:00:${String(i % 60).padStart(2, '0')} vm kernel: eth0: link up, 10Gbps, full duplex\n`
        .repeat(16000)
        .slice(0, MiB),
    )
  let x = 0x9e3779b9 ^ i
  const b = Buffer.allocUnsafe(MiB)
  for (let o = 0; o < MiB; o += 4) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    b.writeInt32LE(x | 0, o)
  }
  return b
}

/** Create `spec` on the region's cluster with the deterministic seed content (identical for every method). */
export async function makeSourceImage(r: Region, spec: string, size: number): Promise<void> {
  await r.rbd('create', '--size', `${size}B`, spec)
  const chunks = SEED_BYTES / MiB
  const stride = Math.floor(size / chunks / MiB) * MiB
  async function* records() {
    for (let i = 0; i < chunks; i++) yield { kind: 'write' as const, offset: i * stride, data: seedChunk(i) }
  }
  const p = spawn(
    'ip',
    ['netns', 'exec', r.ns, 'rbd', '--conf', r.conf, 'import-diff', '--no-progress', '-', spec],
    {
      stdio: ['pipe', 'ignore', 'pipe'],
    },
  )
  let err = ''
  p.stderr.on('data', (b: Buffer) => {
    err += b.toString()
  })
  const done = new Promise<void>((resolve, reject) =>
    p.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`seeding ${spec}: ${err}`)))),
  )
  for await (const b of encodeDiffV1({ size }, records())) {
    if (!p.stdin.write(b)) await new Promise((r) => p.stdin.once('drain', r))
  }
  p.stdin.end()
  await done
  // import-diff leaves no snapshot without an end snapshot in the stream: the image is just written.
}

export interface Writer {
  readonly pidFile: string
  readonly stopFile: string
  readonly process: ChildProcess
  /** Epoch ms of the writer's last flushed write, once it stopped. */
  stoppedAt(): Promise<number>
  /** The rate the writer really achieved (bytes/s), once it stopped: snapshots stall a librbd writer. */
  achievedRate(): Promise<number>
  kill(): Promise<void>
}

export async function startWriter(
  r: Region,
  repoRoot: string,
  pool: string,
  image: string,
  rate: WriterRate,
  dir: string,
): Promise<Writer> {
  const pidFile = path.join(dir, 'writer.pid')
  const stopFile = path.join(dir, 'writer.stopped')
  await rm(stopFile, { force: true })
  const p = spawn(
    'ip',
    [
      'netns',
      'exec',
      r.ns,
      '/usr/bin/python3',
      path.join(repoRoot, 'examples/lib/rbd-live-writer.py'),
      r.conf,
      pool,
      image,
      String(rate),
      pidFile,
      stopFile,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, RBD_WRITER_QUEUE_DEPTH: '16' } },
  )
  let err = ''
  p.stderr?.on('data', (b: Buffer) => {
    err += b.toString()
  })
  for (let i = 0; !existsSync(pidFile); i++) {
    if (p.exitCode !== null || i > 600) throw new Error(`live writer did not start: ${err}`)
    await new Promise((res) => setTimeout(res, 50))
  }
  return {
    pidFile,
    stopFile,
    process: p,
    stoppedAt: async () => Number((await readFile(stopFile, 'utf8')).split(' ')[0]) * 1000,
    achievedRate: async () => {
      const [, bytes, secs] = (await readFile(stopFile, 'utf8')).trim().split(' ')
      return Number(bytes) / Number(secs)
    },
    kill: async () => {
      if (p.exitCode === null) {
        p.kill('SIGTERM')
        await new Promise((res) => p.once('close', res))
      }
    },
  }
}

/** sha256 of an image at a snapshot, read inside its region. */
export async function imageSha256(r: Region, specAtSnap: string): Promise<string> {
  const h = createHash('sha256')
  await new Promise<void>((resolve, reject) => {
    const p = spawn(
      'ip',
      ['netns', 'exec', r.ns, 'rbd', '--conf', r.conf, 'export', '--no-progress', specAtSnap, '-'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    )
    let err = ''
    p.stderr.on('data', (b: Buffer) => {
      err += b.toString()
    })
    p.stdout.on('data', (b: Buffer) => h.update(b))
    p.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`rbd export ${specAtSnap}: ${err}`))))
  })
  return h.digest('hex')
}

/** Remove an image and all its snapshots (missing is fine). */
export async function removeImage(r: Region, spec: string): Promise<void> {
  await r.rbd('snap', 'purge', '--no-progress', spec).catch(() => '')
  await r.rbd('rm', '--no-progress', spec).catch(() => '')
}
