/**
 * The contract every VolumeDriver passes (see the doc comment of src/drivers/volume-driver.ts).
 * A driver's test calls runVolumeDriverContract() with a factory; a skipped case must give its reason.
 */
import { afterEach, describe, expect, it } from 'vitest'
import type { VolumeDriver } from '../../src/drivers/volume-driver.js'
import { SnapferryError } from '../../src/errors/snapferry-error.js'
import { mulberry32, randInt, randomBytes } from '../helpers/random.js'
import { ship } from '../helpers/ship.js'

export interface ContractVolumes {
  readonly source: VolumeDriver
  readonly destination: VolumeDriver
  /** Change the source head behind the driver's back (as the workload would). */
  write(side: 'source' | 'destination', offset: number, data: Buffer): Promise<void>
  resize(side: 'source', size: number): Promise<void>
  cleanup(): Promise<void>
}

export interface ContractOptions {
  readonly name: string
  /** A fresh source volume of `size` bytes (zeros) and a destination that does not exist yet. */
  readonly create: (size: number) => Promise<ContractVolumes>
  readonly skip?: Readonly<Record<string, string>>
}

async function expectCode(p: Promise<unknown>, code: string): Promise<SnapferryError> {
  try {
    await p
  } catch (e) {
    expect(e).toBeInstanceOf(SnapferryError)
    expect((e as SnapferryError).code).toBe(code)
    return e as SnapferryError
  }
  throw new Error(`expected ${code}`)
}

export function runVolumeDriverContract(opts: ContractOptions): void {
  describe(`${opts.name}: VolumeDriver contract`, () => {
    let vols: ContractVolumes | undefined
    afterEach(async () => {
      await vols?.cleanup()
      vols = undefined
    })
    /** `timeoutMs` is a hang guard, never a speed assertion. */
    const test = (title: string, fn: () => Promise<void>, timeoutMs?: number) => {
      const reason = opts.skip?.[title]
      if (reason) it.skip(`${title} (skipped: ${reason})`, fn)
      else it(title, fn, timeoutMs)
    }
    const sums = async (v: ContractVolumes) => {
      const [a, b] = await Promise.all([v.source.checksum('head'), v.destination.checksum('head')])
      return { a, b }
    }

    test('capabilities are plain data', async () => {
      vols = await opts.create(1 << 20)
      for (const v of Object.values(vols.source.capabilities)) expect(typeof v).toBe('boolean')
    })

    test('snapshot names outside the reserved prefix are refused', async () => {
      vols = await opts.create(1 << 20)
      await expectCode(vols.source.createSnapshot('daily-backup'), 'SNAPSHOT_NAME_INVALID')
      await expectCode(vols.source.deleteSnapshot('daily-backup'), 'SNAPSHOT_NAME_INVALID')
      await expectCode(vols.source.createSnapshot('snapferry-a b'), 'SNAPSHOT_NAME_INVALID')
    })

    test('create, list and delete snapshots; deleting a missing one is a no-op', async () => {
      vols = await opts.create(1 << 20)
      await vols.source.createSnapshot('snapferry-t1')
      await expectCode(vols.source.createSnapshot('snapferry-t1'), 'SNAPSHOT_EXISTS')
      expect((await vols.source.listSnapshots()).map((s) => s.name)).toEqual(['snapferry-t1'])
      await vols.source.deleteSnapshot('snapferry-t1')
      await vols.source.deleteSnapshot('snapferry-t1')
      expect(await vols.source.listSnapshots()).toEqual([])
    })

    test('base then deltas under random writes leave identical volumes (seeded)', async () => {
      const size = 3 * (1 << 20) + 12345
      vols = await opts.create(size)
      const rnd = mulberry32(7)
      await vols.write('source', 4096, randomBytes(rnd, 200_000))
      await ship(vols.source, vols.destination, { to: 'snapferry-r0' })
      let s = await sums(vols)
      expect(s.b.digest).toBe(s.a.digest)
      let prev = 'snapferry-r0'
      for (let round = 1; round <= 6; round++) {
        for (let w = 0; w < 20; w++) {
          const off = randInt(rnd, 0, size - 1)
          const len = Math.min(randInt(rnd, 1, 100_000), size - off)
          await vols.write('source', off, rnd() < 0.2 ? Buffer.alloc(len) : randomBytes(rnd, len))
        }
        const to = `snapferry-r${round}`
        await ship(vols.source, vols.destination, { from: prev, to })
        s = await sums(vols)
        expect(s.b, `round ${round}`).toEqual(s.a)
        prev = to
      }
      const dstSnaps = await vols.destination.listSnapshots()
      expect(dstSnaps.filter((x) => x.complete).map((x) => x.name)).toContain(prev)
      // Drivers that keep block-hash records agree on them when the content is equal.
      const [ra, rb] = await Promise.all([
        vols.source.recordDigest?.(prev),
        vols.destination.recordDigest?.(prev),
      ])
      if (ra && rb && ra.blockSize === rb.blockSize) expect(rb).toEqual(ra)
      // 121 writes (two rbd processes each on rbd), 7 ships and 14 checksums: over 60 s on a loaded
      // 2-core CI host (clean-clone CI, 2026-11-22).
    }, 240_000)

    test('an unchanged volume ships an empty delta', async () => {
      vols = await opts.create(1 << 20)
      await vols.write('source', 0, Buffer.alloc(1000, 1))
      await ship(vols.source, vols.destination, { to: 'snapferry-a' })
      const r = await ship(vols.source, vols.destination, { from: 'snapferry-a', to: 'snapferry-b' })
      expect(r.exported.extents).toBe(0)
      expect(r.imported.extents).toBe(0)
    })

    test('growth and shrink are carried across', async () => {
      vols = await opts.create(1 << 20)
      await vols.write('source', 100, Buffer.alloc(5000, 3))
      await ship(vols.source, vols.destination, { to: 'snapferry-a' })
      await vols.resize('source', 3 * (1 << 20) + 77)
      await vols.write('source', 2 * (1 << 20), Buffer.alloc(7000, 9))
      await ship(vols.source, vols.destination, { from: 'snapferry-a', to: 'snapferry-b' })
      let s = await sums(vols)
      expect(s.b).toEqual(s.a)
      await vols.resize('source', 300_001)
      await ship(vols.source, vols.destination, { from: 'snapferry-b', to: 'snapferry-c' })
      s = await sums(vols)
      expect(s.b).toEqual(s.a)
      expect(s.a.size).toBe(300_001)
    })

    test('import refuses a missing start snapshot and an existing end snapshot', async () => {
      vols = await opts.create(1 << 20)
      await ship(vols.source, vols.destination, { to: 'snapferry-a' })
      const e = await expectCode(
        ship(vols.source, vols.destination, { from: 'snapferry-zz', to: 'snapferry-b', create: true }),
        'SNAPSHOT_NOT_FOUND',
      )
      expect(e.message).toContain("snapshot 'snapferry-zz' does not exist")
      await vols.source.deleteSnapshot('snapferry-b')
      await ship(vols.source, vols.destination, { from: 'snapferry-a', to: 'snapferry-b' })
      // Re-applying a delta whose end snapshot exists on the destination fails cleanly.
      await vols.source.deleteSnapshot('snapferry-b')
      const again = await expectCode(
        ship(vols.source, vols.destination, { from: 'snapferry-a', to: 'snapferry-b' }),
        'SNAPSHOT_EXISTS',
      )
      expect(again.message).toContain("end snapshot 'snapferry-b' already exists")
      const s = await sums(vols)
      expect(s.b).toEqual(s.a)
    })

    test('import refuses when the destination head was modified, and repair fixes it', async () => {
      vols = await opts.create(1 << 20)
      await vols.write('source', 0, Buffer.alloc(10_000, 5))
      await ship(vols.source, vols.destination, { to: 'snapferry-a' })
      await vols.write('destination', 500_000, Buffer.from('someone wrote here'))
      expect((await vols.destination.checkHead('snapferry-a')).matches).toBe(false)
      await vols.write('source', 20_000, Buffer.alloc(100, 6))
      const e = await expectCode(
        ship(vols.source, vols.destination, { from: 'snapferry-a', to: 'snapferry-b' }),
        'DEST_HEAD_DIVERGED',
      )
      expect(e.message).toContain("no longer equals snapshot 'snapferry-a'")
      if (!vols.destination.capabilities.headDiff) return
      const changed = await vols.destination.headChangesSince('snapferry-a')
      expect(changed.length).toBeGreaterThan(0)
      // The refusal names the exact extents, not the coarser objects a fast first check may look at.
      const bytes = changed.reduce((n, x) => n + x.length, 0)
      expect(e.message).toContain(`${bytes} bytes in ${changed.length} extents differ`)
      await vols.source.deleteSnapshot('snapferry-b')
      await ship(vols.source, vols.destination, {
        from: 'snapferry-a',
        to: 'snapferry-b',
        include: changed,
        repair: true,
      })
      const s = await sums(vols)
      expect(s.b).toEqual(s.a)
    })

    test('a base refuses to overwrite a destination that already holds data', async () => {
      vols = await opts.create(1 << 20)
      await vols.write('destination', 0, Buffer.from('precious'))
      await expectCode(ship(vols.source, vols.destination, { to: 'snapferry-a' }), 'VOLUME_EXISTS')
      await vols.source.deleteSnapshot('snapferry-a')
      await ship(vols.source, vols.destination, { to: 'snapferry-a', overwrite: true })
      const s = await sums(vols)
      expect(s.b).toEqual(s.a)
    })
  })
}
