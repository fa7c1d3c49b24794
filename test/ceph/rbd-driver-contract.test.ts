/** The VolumeDriver contract against two real Ceph clusters: rbd → rbd, file → rbd and rbd → file. */
import { mkdtemp, rm, truncate, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, it } from 'vitest'
import { FileDriver } from '../../src/drivers/file/file-driver.js'
import { RbdDriver } from '../../src/drivers/rbd/rbd-driver.js'
import type { VolumeDriver } from '../../src/drivers/volume-driver.js'
import { type ContractVolumes, runVolumeDriverContract } from '../contract/volume-driver-contract.js'
import { CEPH_SKIP_REASON, type Cluster, startClusters } from '../helpers/ceph.js'
import { pwrite } from '../helpers/files.js'
import { rbdWrite } from '../helpers/rbd-poke.js'

let clusters: Cluster[] = []
let stop = async () => {}
let n = 0

beforeAll(async () => {
  if (CEPH_SKIP_REASON) return
  const c = await startClusters(2)
  clusters = c.clusters
  stop = c.stop
}, 180_000)
afterAll(() => stop(), 60_000)

function rbdSide(c: Cluster, image: string, librbd: boolean): RbdDriver {
  return new RbdDriver({
    librbd,
    pool: 'rbd',
    image,
    connection: { conf: c.conf, timeoutSeconds: 30 },
    wholeObject: false,
    stageLimit: 1 << 20,
  })
}

type Side = {
  driver: VolumeDriver
  write(off: number, d: Buffer, size: number): Promise<void>
  resize(size: number): Promise<void>
  cleanup(): Promise<void>
}

/** `librbd: false`: every call through the rbd CLI, as where python3-rbd is missing. */
async function rbdVolume(ci: number, create: number | undefined, librbd = true): Promise<Side> {
  const c = clusters[ci] as Cluster
  const image = `img${process.pid}x${n++}`
  if (create !== undefined) await c.rbd('create', '--size', `${create}B`, `rbd/${image}`)
  return {
    driver: rbdSide(c, image, librbd),
    write: (off, d, size) => rbdWrite(c, `rbd/${image}`, off, d, size),
    resize: async (size) => {
      await c.rbd('resize', '--no-progress', '--allow-shrink', '--size', `${size}B`, `rbd/${image}`)
    },
    cleanup: async () => {
      await c.rbd('snap', 'purge', '--no-progress', `rbd/${image}`).catch(() => {})
      await c.rbd('rm', '--no-progress', `rbd/${image}`).catch(() => {})
    },
  }
}

async function fileVolume(create: number | undefined): Promise<Side> {
  const dir = await mkdtemp(path.join(tmpdir(), 'sf-rbdc-'))
  const f = path.join(dir, 'v.img')
  if (create !== undefined) {
    await writeFile(f, '')
    await truncate(f, create)
  }
  return {
    driver: new FileDriver({ path: f, blockSize: 16384 }),
    write: (off, d) => pwrite(f, off, d),
    resize: (size) => truncate(f, size),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  }
}

function pair(make: (size: number) => Promise<[Side, Side]>) {
  return async (size: number): Promise<ContractVolumes> => {
    const [s, d] = await make(size)
    return {
      source: s.driver,
      destination: d.driver,
      write: (side, off, data) => (side === 'source' ? s.write(off, data, size) : d.write(off, data, size)),
      resize: (_side, sz) => s.resize(sz),
      cleanup: async () => {
        await s.cleanup()
        await d.cleanup()
      },
    }
  }
}

const skip = CEPH_SKIP_REASON
if (skip) {
  describe('rbd driver contract', () => it.skip(`skipped: ${skip}`, () => {}))
} else {
  runVolumeDriverContract({
    name: 'rbd → rbd (two clusters)',
    create: pair(async (size) => [await rbdVolume(0, size), await rbdVolume(1, undefined)]),
  })
  runVolumeDriverContract({
    name: 'rbd → rbd, rbd CLI only (librbd: false)',
    create: pair(async (size) => [await rbdVolume(0, size, false), await rbdVolume(1, undefined, false)]),
  })
  runVolumeDriverContract({
    name: 'file → rbd',
    create: pair(async (size) => [await fileVolume(size), await rbdVolume(1, undefined)]),
  })
  runVolumeDriverContract({
    name: 'rbd → file',
    create: pair(async (size) => [await rbdVolume(0, size), await fileVolume(undefined)]),
  })
}
