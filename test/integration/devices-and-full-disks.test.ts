/**
 * Real block devices (loop devices) as source and destination, and a destination filesystem that fills
 * up mid-transfer (a small tmpfs): a clear error, nothing lost, and the next run finishes the job.
 * Both need root (CI runs as root); elsewhere they are skipped with the reason.
 */
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, open, readFile, rm, truncate, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { EXIT } from '../../src/cli/exit-codes.js'
import { FileDriver } from '../../src/drivers/file/file-driver.js'
import { snapferry } from '../helpers/cli.js'
import { mulberry32, randInt, randomBytes } from '../helpers/random.js'
import { ship } from '../helpers/ship.js'

const MiB = 1 << 20
const isRoot = process.getuid?.() === 0
const canLoop = isRoot && existsSync('/dev/loop-control')
const cleanups: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {})
})

async function scratch(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'sf-dev-'))
  cleanups.push(() => rm(dir, { recursive: true, force: true }))
  return dir
}

async function loopDevice(file: string): Promise<string> {
  const dev = execFileSync('losetup', ['--find', '--show', file]).toString().trim()
  cleanups.push(async () => {
    execFileSync('losetup', ['-d', dev])
  })
  return dev
}

async function sha256Prefix(file: string, bytes: number): Promise<string> {
  const fh = await open(file, 'r')
  const h = createHash('sha256')
  const buf = Buffer.alloc(1 << 20)
  for (let pos = 0; pos < bytes; ) {
    const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, bytes - pos), pos)
    if (bytesRead === 0) break
    h.update(buf.subarray(0, bytesRead))
    pos += bytesRead
  }
  await fh.close()
  return h.digest('hex')
}

async function seededImage(file: string, size: number, seed: number, writes: number): Promise<void> {
  await writeFile(file, '')
  await truncate(file, size)
  const rnd = mulberry32(seed)
  const fh = await open(file, 'r+')
  for (let i = 0; i < writes; i++) {
    const len = randInt(rnd, 1, 300_000)
    await fh.write(randomBytes(rnd, len), 0, len, randInt(rnd, 0, size - len))
  }
  await fh.close()
}

describe.skipIf(!canLoop)(
  `block devices${canLoop ? '' : ' (skipped: needs root and /dev/loop-control)'}`,
  () => {
    it('a base onto a device full of old data zero-fills the gaps; deltas follow; a device is also a source', async () => {
      const dir = await scratch()
      const size = 12 * MiB + 4096
      const src = path.join(dir, 'src.img')
      await seededImage(src, size, 1, 20)
      // The destination device is larger than the volume and full of junk that must not survive.
      const backing = path.join(dir, 'dst-backing.img')
      await writeFile(backing, Buffer.alloc(16 * MiB, 0xa5))
      const dev = await loopDevice(backing)
      const a = new FileDriver({ path: src, blockSize: 16384 })
      const b = new FileDriver({ path: dev, blockSize: 16384, stateDir: path.join(dir, 'dev-state') })
      expect((await b.describe()).kind).toBe('block-device')
      expect((await b.describe()).size).toBe(16 * MiB)
      await expect(ship(a, b, { to: 'snapferry-0000-d' })).rejects.toMatchObject({ code: 'VOLUME_EXISTS' })
      await a.deleteSnapshot('snapferry-0000-d')
      await ship(a, b, { to: 'snapferry-0000-d', overwrite: true })
      expect(await sha256Prefix(dev, size)).toBe(await sha256Prefix(src, size))
      const fh = await open(src, 'r+')
      await fh.write(Buffer.alloc(50_000, 7), 0, 50_000, 3 * MiB)
      await fh.write(Buffer.alloc(70_000), 0, 70_000, 100_000)
      await fh.close()
      await ship(a, b, { from: 'snapferry-0000-d', to: 'snapferry-0001-d' })
      expect(await sha256Prefix(dev, size)).toBe(await sha256Prefix(src, size))

      // And the other way: the device as the source of a move into a file.
      const out = path.join(dir, 'out.img')
      const c = new FileDriver({ path: dev, blockSize: 65536, stateDir: path.join(dir, 'dev-src-state') })
      const d = new FileDriver({ path: out, blockSize: 65536 })
      await ship(c, d, { to: 'snapferry-0000-e' })
      expect(await sha256Prefix(out, 16 * MiB)).toBe(await sha256Prefix(dev, 16 * MiB))
    })

    it('a device smaller than the volume is refused before anything is written', async () => {
      const dir = await scratch()
      const src = path.join(dir, 'src.img')
      await seededImage(src, 8 * MiB, 2, 5)
      const backing = path.join(dir, 'small.img')
      await writeFile(backing, Buffer.alloc(4 * MiB, 1))
      const dev = await loopDevice(backing)
      const b = new FileDriver({ path: dev, blockSize: 16384, stateDir: path.join(dir, 's') })
      const e = await ship(new FileDriver({ path: src, blockSize: 16384 }), b, {
        to: 'snapferry-0000-s',
        overwrite: true,
      }).catch((x) => x)
      expect(e.code).toBe('VOLUME_TOO_SMALL')
      expect(e.message).toBe(`block device ${dev} has ${4 * MiB} bytes, the volume needs ${8 * MiB}`)
      expect((await readFile(backing)).equals(Buffer.alloc(4 * MiB, 1))).toBe(true)
    })
  },
)

describe.skipIf(!isRoot)(
  `a destination filesystem that fills up${isRoot ? '' : ' (skipped: needs root to mount a tmpfs)'}`,
  () => {
    it('fails with VOLUME_NO_SPACE naming the file and the fix, loses nothing, and the next run completes', async () => {
      const dir = await scratch()
      const mnt = path.join(dir, 'small-fs')
      await mkdir(mnt)
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=6m', 'tmpfs', mnt])
      cleanups.push(async () => {
        execFileSync('umount', [mnt])
      })
      const src = path.join(dir, 'src.img')
      await seededImage(src, 24 * MiB, 3, 60) // ~9 MiB of data: more than the 6 MiB filesystem holds
      const before = await sha256Prefix(src, 24 * MiB)
      const pipeline = path.join(dir, 'p.yaml')
      await writeFile(
        pipeline,
        `apiVersion: snapferry/v1
kind: Pipeline
name: full-disk
volumes:
  - name: disk
    source: { driver: file, path: src.img, blockSize: 16KiB }
    destination: { driver: file, path: small-fs/dst.img, blockSize: 16KiB, stateDir: dst-state }
convergence: { targetDowntime: 1m, minRounds: 1, whenConverged: cutover }
stateDir: state
`,
      )
      const r = await snapferry(['run', pipeline])
      expect(r.code).toBe(EXIT.FAILED)
      expect(r.stderr).toContain(`error VOLUME_NO_SPACE: no space left to write ${path.join(mnt, 'dst.img')}`)
      expect(r.stderr).toContain('hint: free space on the destination filesystem')
      expect(await sha256Prefix(src, 24 * MiB)).toBe(before)
      const st = JSON.parse((await snapferry(['status', '--json', pipeline])).stdout)
      expect(st.phase).toBe('failed')
      expect(st.lastError.code).toBe('VOLUME_NO_SPACE')
      // The operator makes room; the same command finishes the move.
      execFileSync('mount', ['-o', 'remount,size=64m', mnt])
      const again = await snapferry(['run', pipeline])
      expect(again.code, again.stderr).toBe(EXIT.OK)
      expect(await sha256Prefix(path.join(mnt, 'dst.img'), 24 * MiB)).toBe(before)
    })
  },
)
