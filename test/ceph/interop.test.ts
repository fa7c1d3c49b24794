/**
 * Interop with the real rbd tools, both directions, and Ceph's own standards: diff.sh semantics and a
 * diff_continuous.sh-style run of 30+ rounds under a live librbd writer, every snapshot compared.
 */
import { execFile, spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdtemp, open, readFile, rm, truncate, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { PassThrough } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { decodeDiff } from '../../src/delta-format/diff-decoder.js'
import { encodeDiffV1 } from '../../src/delta-format/diff-encoder.js'
import { decodeImageV2 } from '../../src/delta-format/image-v2-decoder.js'
import { mergeDiffs } from '../../src/delta-format/merge-diffs.js'
import { FileDriver } from '../../src/drivers/file/file-driver.js'
import { spareExporterPid } from '../../src/drivers/rbd/librbd-exporters.js'
import type { StreamingRbd } from '../../src/drivers/rbd/rbd-cli.js'
import { RbdDriver } from '../../src/drivers/rbd/rbd-driver.js'
import { startLibrbdExport } from '../../src/drivers/rbd/rbd-export.js'
import type { SnapferryError } from '../../src/errors/snapferry-error.js'
import { REPO_ROOT } from '../helpers/built.js'
import { CEPH_SKIP_REASON, type Cluster, startClusters } from '../helpers/ceph.js'
import { applyToBuffer, collect, fromBuffers } from '../helpers/diff-oracle.js'
import { mulberry32, randInt, randomBytes } from '../helpers/random.js'
import { rbdWrite } from '../helpers/rbd-poke.js'
import { ship } from '../helpers/ship.js'

const MiB = 1 << 20
let A: Cluster
let B: Cluster
let stop = async () => {}
let dir = ''
let n = 0

beforeAll(async () => {
  if (CEPH_SKIP_REASON) return
  const c = await startClusters(2)
  ;[A, B] = c.clusters as [Cluster, Cluster]
  stop = c.stop
  dir = await mkdtemp(path.join(tmpdir(), 'sf-interop-'))
}, 180_000)
afterAll(async () => {
  await stop()
  if (dir) await rm(dir, { recursive: true, force: true })
}, 60_000)

const img = () => `rbd/i${n++}`
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')

/** Run rbd with a cluster's conf, stdin from `input`, stdout collected. */
function rbdPipe(c: Cluster, args: string[], input?: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const p = spawn('rbd', ['--conf', c.conf, ...args], { stdio: ['pipe', 'pipe', 'pipe'] })
    const out: Buffer[] = []
    let err = ''
    p.stdout.on('data', (b: Buffer) => out.push(b))
    p.stderr.on('data', (b: Buffer) => {
      err += b.toString()
    })
    p.on('close', (code) =>
      code === 0
        ? resolve(Buffer.concat(out))
        : reject(new Error(`rbd ${args.join(' ')}: exit ${code}: ${err}`)),
    )
    p.stdin.end(input ?? Buffer.alloc(0))
  })
}
const rbdExport = (c: Cluster, spec: string) => rbdPipe(c, ['export', '--no-progress', spec, '-'])
const rbdDriver = (c: Cluster, spec: string) =>
  new RbdDriver({
    pool: 'rbd',
    image: spec.split('/')[1] as string,
    connection: { conf: c.conf, timeoutSeconds: 30 },
    wholeObject: false,
    stageLimit: 64 * MiB,
  })

async function fileWith(name: string, size: number, seed: number, writes: number): Promise<string> {
  const f = path.join(dir, name)
  await writeFile(f, '')
  await truncate(f, size)
  await scribbleFile(f, size, seed, writes)
  return f
}
async function scribbleFile(f: string, size: number, seed: number, writes: number) {
  const rnd = mulberry32(seed)
  const fh = await open(f, 'r+')
  for (let i = 0; i < writes; i++) {
    const len = randInt(rnd, 1, 100_000)
    await fh.write(
      rnd() < 0.2 ? Buffer.alloc(len) : randomBytes(rnd, len),
      0,
      len,
      randInt(rnd, 0, size - len),
    )
  }
  await fh.close()
}
/** What the file driver would export, as bytes (snapshot created here). */
async function fileDelta(d: FileDriver, from: string | undefined, to: string): Promise<Buffer> {
  await d.createSnapshot(to)
  const pass = new PassThrough()
  const bytes = collect(pass)
  await d.exportDiff({ fromSnap: from, toSnap: to }, pass)
  return Buffer.concat(await bytes)
}

const describeCeph = CEPH_SKIP_REASON ? describe.skip : describe

describeCeph('interop with rbd', () => {
  it('rbd import-diff accepts file-driver deltas and the image equals the file', async () => {
    const size = 8 * MiB + 12345
    const f = await fileWith('a.img', size, 1, 40)
    const fd = new FileDriver({ path: f, blockSize: 4096 })
    const spec = img()
    await B.rbd('create', '--size', `${size}B`, spec)
    await rbdPipe(
      B,
      ['import-diff', '--no-progress', '-', spec],
      await fileDelta(fd, undefined, 'snapferry-0000-a'),
    )
    expect(sha(await rbdExport(B, spec))).toBe(sha(await readFile(f)))
    for (let r = 1; r <= 3; r++) {
      await scribbleFile(f, size, 10 + r, 20)
      await rbdPipe(
        B,
        ['import-diff', '--no-progress', '-', spec],
        await fileDelta(fd, `snapferry-000${r - 1}-a`, `snapferry-000${r}-a`),
      )
      expect(sha(await rbdExport(B, `${spec}@snapferry-000${r}-a`)), `round ${r}`).toBe(
        sha(await readFile(f)),
      )
    }
  })

  it('the file driver applies streams from rbd export-diff exactly', async () => {
    const spec = img()
    const size = 8 * MiB
    await A.rbd('create', '--size', `${size}B`, spec)
    const rnd = mulberry32(3)
    const f = path.join(dir, 'from-rbd.img')
    const fd = new FileDriver({ path: f, blockSize: 16384 })
    let prev: string | undefined
    for (let r = 0; r < 4; r++) {
      for (let w = 0; w < 15; w++)
        await rbdWrite(A, spec, randInt(rnd, 0, size - 70_000), randomBytes(rnd, randInt(rnd, 1, 70_000)))
      const snap = `snapferry-000${r}-b`
      await A.rbd('snap', 'create', '--no-progress', `${spec}@${snap}`)
      const stream = await rbdPipe(A, [
        'export-diff',
        '--no-progress',
        ...(prev ? ['--from-snap', prev] : []),
        `${spec}@${snap}`,
        '-',
      ])
      await fd.importDiff({ fromSnap: prev, toSnap: snap }, fromBuffers([stream], 65536))
      expect(sha(await readFile(f)), `round ${r}`).toBe(sha(await rbdExport(A, `${spec}@${snap}`)))
      prev = snap
    }
  })

  it('merged diffs: rbd import-diff accepts snapferry merges, rbd merge-diff accepts file-driver deltas', async () => {
    const size = 4 * MiB
    const f = await fileWith('m.img', size, 5, 30)
    const fd = new FileDriver({ path: f, blockSize: 4096 })
    const d0 = await fileDelta(fd, undefined, 'snapferry-0000-m')
    await scribbleFile(f, size, 6, 20)
    const d1 = await fileDelta(fd, 'snapferry-0000-m', 'snapferry-0001-m')
    await scribbleFile(f, size, 7, 20)
    const d2 = await fileDelta(fd, 'snapferry-0001-m', 'snapferry-0002-m')
    // snapferry's merge of d1+d2, applied by rbd onto the image at d0.
    const merged = mergeDiffs(await decodeDiff(fromBuffers([d1])), await decodeDiff(fromBuffers([d2])))
    const mergedBytes = Buffer.concat(await collect(encodeDiffV1(merged.header, merged.records)))
    const spec = img()
    await B.rbd('create', '--size', `${size}B`, spec)
    await rbdPipe(B, ['import-diff', '--no-progress', '-', spec], d0)
    await rbdPipe(B, ['import-diff', '--no-progress', '-', spec], mergedBytes)
    expect(sha(await rbdExport(B, `${spec}@snapferry-0002-m`))).toBe(sha(await readFile(f)))
    // rbd's own merge-diff of the file driver's deltas, applied to a second image.
    await writeFile(path.join(dir, 'd1'), d1)
    await writeFile(path.join(dir, 'd2'), d2)
    const rbdMerged = await rbdPipe(B, [
      'merge-diff',
      '--no-progress',
      path.join(dir, 'd1'),
      path.join(dir, 'd2'),
      '-',
    ])
    const spec2 = img()
    await B.rbd('create', '--size', `${size}B`, spec2)
    await rbdPipe(B, ['import-diff', '--no-progress', '-', spec2], d0)
    await rbdPipe(B, ['import-diff', '--no-progress', '-', spec2], rbdMerged)
    expect(sha(await rbdExport(B, spec2))).toBe(sha(await readFile(f)))
  })

  it('reads rbd export --export-format 2 streams: every snapshot and the head', async () => {
    const spec = img()
    const size = 4 * MiB
    await A.rbd('create', '--size', `${size}B`, spec)
    await A.rbd('image-meta', 'set', spec, 'conf_rbd_cache', 'false')
    const rnd = mulberry32(9)
    const snapShas: string[] = []
    for (let s = 0; s < 3; s++) {
      for (let w = 0; w < 10; w++)
        await rbdWrite(A, spec, randInt(rnd, 0, size - 50_000), randomBytes(rnd, randInt(rnd, 1, 50_000)))
      if (s < 2) {
        await A.rbd('snap', 'create', '--no-progress', `${spec}@s${s}`)
        await A.rbd('snap', 'protect', `${spec}@s${s}`).catch(() => {})
        snapShas.push(sha(await rbdExport(A, `${spec}@s${s}`)))
      }
    }
    const stream = await rbdPipe(A, ['export', '--no-progress', '--export-format', '2', spec, '-'])
    const decoded = await decodeImageV2(fromBuffers([stream], 100_000))
    expect(decoded.header.meta).toEqual([['conf_rbd_cache', 'false']])
    expect(decoded.header.order).toBe(22)
    let image: Buffer = Buffer.alloc(0)
    const seen: string[] = []
    for await (const d of decoded.diffs) {
      image = applyToBuffer(image, d.header, await collect(d.records))
      seen.push(sha(image))
    }
    expect(seen.slice(0, 2)).toEqual(snapShas)
    expect(seen[2]).toBe(sha(await rbdExport(A, spec)))
  })
})

describeCeph('the librbd exporter', () => {
  /** Everything a process wrote to stdout, or its mapped error. */
  async function drain(p: StreamingRbd): Promise<Buffer> {
    const out: Buffer[] = []
    for await (const b of p.stdout as AsyncIterable<Buffer>) out.push(b)
    await p.done
    return Buffer.concat(out)
  }
  const conn = () => ({ conf: A.conf, timeoutSeconds: 30 })

  it("writes rbd export-diff's stream byte for byte: bases, deltas, whole objects, zeros, thin and removed objects", async () => {
    const spec = img()
    const rnd = mulberry32(41)
    await A.rbd('create', '--size', `${64 * MiB}B`, spec)
    await rbdWrite(A, spec, 0, randomBytes(rnd, MiB))
    await rbdWrite(A, spec, 8 * MiB, Buffer.alloc(MiB)) // written zeros
    await rbdWrite(A, spec, 20 * MiB - 4096, randomBytes(rnd, 6 * MiB)) // across objects
    await rbdWrite(A, spec, 50 * MiB, randomBytes(rnd, 2 * MiB)) // removed by the shrink below
    for (let i = 0; i < 40; i++) {
      // 4 KiB blocks in objects 3–6: some adjacent, some with small and some with large gaps.
      const off = 12 * MiB + Math.floor(rnd() * 4096) * 4096
      await rbdWrite(A, spec, off, randomBytes(rnd, 4096))
    }
    await A.rbd('snap', 'create', `${spec}@s1`)
    for (let i = 0; i < 30; i++)
      await rbdWrite(A, spec, Math.floor(rnd() * 16384) * 4096, randomBytes(rnd, 4096))
    await rbdWrite(A, spec, 0, Buffer.alloc(64 << 10)) // zeros over data
    await A.rbd('resize', '--no-progress', '--allow-shrink', '--size', `${48 * MiB}B`, spec)
    await A.rbd('resize', '--no-progress', '--size', `${64 * MiB}B`, spec)
    await A.rbd('snap', 'create', `${spec}@s2`)
    const cases: [string | undefined, string, boolean][] = [
      [undefined, 's1', false],
      [undefined, 's2', false],
      ['s1', 's2', false],
      ['s1', 's2', true],
    ]
    for (const [from, to, whole] of cases) {
      const theirs = await rbdPipe(A, [
        'export-diff',
        '--no-progress',
        ...(from ? ['--from-snap', from] : []),
        ...(whole ? ['--whole-object'] : []),
        `${spec}@${to}`,
        '-',
      ])
      const ours = await drain(startLibrbdExport(conn(), spec, from, to, whole, 'export'))
      expect({ from, to, whole, bytes: ours.length, same: ours.equals(theirs) }).toEqual({
        from,
        to,
        whole,
        bytes: theirs.length,
        same: true,
      })
    }
  }, 180_000)

  it('fails in rbd words: a missing snapshot or image is VOLUME_NOT_FOUND naming it', async () => {
    const spec = img()
    await A.rbd('create', '--size', `${8 * MiB}B`, spec)
    for (const [s, snap] of [
      [spec, 'nope'],
      ['rbd/no-such-image', 's1'],
    ] as const) {
      const e = (await drain(
        startLibrbdExport(conn(), s, undefined, snap, false, `export of ${s}@${snap}`),
      ).catch((x: unknown) => x)) as SnapferryError
      expect(e.code).toBe('VOLUME_NOT_FOUND')
      expect(e.message).toContain(
        `export of ${s}@${snap}: the librbd exporter (python3-rbd) exited with status 1`,
      )
      expect(e.message).toContain('(2) No such file or directory')
    }
  }, 60_000)

  it('each export leaves a warm exporter for the next; a dead one is replaced, the stream is the same', async () => {
    const spec = img()
    const rnd = mulberry32(43)
    await A.rbd('create', '--size', `${16 * MiB}B`, spec)
    await rbdWrite(A, spec, 3 * MiB, randomBytes(rnd, 2 * MiB))
    await A.rbd('snap', 'create', `${spec}@s1`)
    const theirs = await rbdPipe(A, ['export-diff', '--no-progress', `${spec}@s1`, '-'])
    const c = conn()
    const first = startLibrbdExport(c, spec, undefined, 's1', false, 'export')
    expect((await drain(first)).equals(theirs)).toBe(true)
    // The spare starts once the export is done; give it a moment to exist.
    const waitForSpare = async () => {
      for (let i = 0; i < 100 && spareExporterPid(c) === undefined; i++) await sleep(20)
      return spareExporterPid(c)
    }
    const spare = await waitForSpare()
    expect(spare).toBeGreaterThan(0)
    const second = startLibrbdExport(c, spec, undefined, 's1', false, 'export')
    expect(second.pid).toBe(spare)
    expect((await drain(second)).equals(theirs)).toBe(true)
    // A spare that died is not used: the export runs in a new process, byte for byte the same.
    const dead = (await waitForSpare()) as number
    process.kill(dead, 'SIGKILL')
    for (let i = 0; i < 100 && spareExporterPid(c) === dead; i++) await sleep(20)
    const third = startLibrbdExport(c, spec, undefined, 's1', false, 'export')
    expect(third.pid).not.toBe(dead)
    expect((await drain(third)).equals(theirs)).toBe(true)
    // A warm exporter given a job that fails names that job in its error.
    await waitForSpare()
    const e = (await drain(
      startLibrbdExport(c, spec, undefined, 'nope', false, `export of ${spec}@nope`),
    ).catch((x: unknown) => x)) as SnapferryError
    expect(e.code).toBe('VOLUME_NOT_FOUND')
    expect(e.message).toContain(
      `export of ${spec}@nope: the librbd exporter (python3-rbd) exited with status 1`,
    )
  }, 60_000)
})

describeCeph("Ceph's diff.sh semantics, with snapferry's errors", () => {
  it('wrong order, re-applying and a missing start snapshot each fail clearly', async () => {
    const spec = img()
    await A.rbd('create', '--size', '8M', spec)
    const src = rbdDriver(A, spec)
    const dstSpec = img()
    const dst = rbdDriver(B, dstSpec)
    await rbdWrite(A, spec, 0, randomBytes(mulberry32(1), 100_000))
    await ship(src, dst, { to: 'snapferry-0000-x' })
    await rbdWrite(A, spec, 500_000, randomBytes(mulberry32(2), 100_000))
    await src.createSnapshot('snapferry-0001-x')
    await rbdWrite(A, spec, 900_000, randomBytes(mulberry32(3), 100_000))
    await src.createSnapshot('snapferry-0002-x')
    const err = (p: Promise<unknown>) =>
      p.then(
        () => undefined,
        (e: SnapferryError) => e,
      )
    const wrong = await err(
      ship(src, dst, { from: 'snapferry-0002-x', to: 'snapferry-0001-x', create: false }),
    )
    expect(wrong?.code).toBe('STATE_MISMATCH')
    expect(wrong?.message).toContain(
      "start snapshot 'snapferry-0002-x' is newer than end snapshot 'snapferry-0001-x'",
    )
    await ship(src, dst, { from: 'snapferry-0000-x', to: 'snapferry-0001-x', create: false })
    const again = await err(
      ship(src, dst, { from: 'snapferry-0000-x', to: 'snapferry-0001-x', create: false }),
    )
    expect(again?.code).toBe('SNAPSHOT_EXISTS')
    expect(again?.message).toContain("end snapshot 'snapferry-0001-x' already exists on rbd image")
    const fresh = rbdDriver(B, img())
    await B.rbd('create', '--size', '8M', `rbd/i${n - 1}`)
    const missing = await err(
      ship(src, fresh, { from: 'snapferry-0001-x', to: 'snapferry-0002-x', create: false }),
    )
    expect(missing?.code).toBe('SNAPSHOT_NOT_FOUND')
    expect(missing?.message).toContain("start snapshot 'snapferry-0001-x' does not exist on rbd image")
    await ship(src, dst, { from: 'snapferry-0001-x', to: 'snapferry-0002-x', create: false })
    expect(sha(await rbdExport(B, `${dstSpec}@snapferry-0002-x`))).toBe(
      sha(await rbdExport(A, `${spec}@snapferry-0002-x`)),
    )
  })

  it("import-diff's trust in snapshot names cannot leave the destination different", async () => {
    const spec = img()
    await A.rbd('create', '--size', '8M', spec)
    const src = rbdDriver(A, spec)
    const dstSpec = img()
    const dst = rbdDriver(B, dstSpec)
    await rbdWrite(A, spec, 0, Buffer.alloc(100_000, 1))
    await ship(src, dst, { to: 'snapferry-0000-t' })
    await rbdWrite(B, dstSpec, 4 * MiB, Buffer.from('written behind snapferry'))
    await rbdWrite(A, spec, 200_000, Buffer.alloc(1000, 2))
    const e = await ship(src, dst, { to: 'snapferry-0001-t', from: 'snapferry-0000-t' }).then(
      () => undefined,
      (x: SnapferryError) => x,
    )
    expect(e?.code).toBe('DEST_HEAD_DIVERGED')
    expect(e?.message).toMatch(/no longer equals snapshot 'snapferry-0000-t': \d+ bytes in 1 extents differ/)
    expect((await dst.listSnapshots()).map((s) => s.name)).toEqual(['snapferry-0000-t'])
  })
})

describeCeph('continuous diff under a live librbd writer (diff_continuous.sh)', () => {
  it('30 rounds, each destination snapshot byte-identical to the source at that snapshot', async () => {
    const spec = img()
    const size = 32 * MiB
    await A.rbd('create', '--size', `${size}B`, spec)
    const pidFile = path.join(dir, 'writer.pid')
    const writer = spawn(
      '/usr/bin/python3',
      [
        path.join(REPO_ROOT, 'examples/lib/rbd-live-writer.py'),
        A.conf,
        'rbd',
        spec.split('/')[1] as string,
        String(2 * MiB),
        pidFile,
      ],
      {
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    )
    let wErr = ''
    writer.stderr.on('data', (b: Buffer) => {
      wErr += b.toString()
    })
    for (let i = 0; i < 200 && !existsSync(pidFile); i++) await new Promise((r) => setTimeout(r, 50))
    expect(existsSync(pidFile), wErr).toBe(true)
    const src = rbdDriver(A, spec)
    const dstSpec = img()
    const dst = rbdDriver(B, dstSpec)
    const snaps: string[] = []
    let prev: string | undefined
    try {
      for (let r = 0; r < 31; r++) {
        const to = `snapferry-${String(r).padStart(4, '0')}-c`
        const res = await ship(src, dst, { from: prev, to })
        if (r > 0)
          expect(
            res.exported.dataBytes,
            `round ${r} shipped nothing: is the writer writing?`,
          ).toBeGreaterThan(0)
        snaps.push(to)
        prev = to
        await new Promise((x) => setTimeout(x, randInt(mulberry32(r), 50, 400)))
      }
    } finally {
      writer.kill('SIGTERM')
      await new Promise((r) => writer.on('close', r))
    }
    for (const s of snaps) {
      const [a, b] = await Promise.all([rbdExport(A, `${spec}@${s}`), rbdExport(B, `${dstSpec}@${s}`)])
      expect(sha(b), s).toBe(sha(a))
    }
  }, 240_000)
})

it('python3-rbd is present for the live writer', async () => {
  if (CEPH_SKIP_REASON) return
  await promisify(execFile)('/usr/bin/python3', ['-c', 'import rbd, rados'])
})
