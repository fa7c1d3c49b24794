/**
 * The apply marker off the critical path: an apply returns once import-diff made the end snapshot and
 * removes its `snapferry.applying` marker afterwards. A marker whose end snapshot exists is a finished
 * apply; one whose end snapshot is missing is an interrupted apply and still refuses a plain delta.
 */
import { PassThrough } from 'node:stream'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MARKER_KEY } from '../../src/drivers/rbd/rbd-apply.js'
import { RbdDriver } from '../../src/drivers/rbd/rbd-driver.js'
import type { SnapferryError } from '../../src/errors/snapferry-error.js'
import { CEPH_SKIP_REASON, type Cluster, startClusters } from '../helpers/ceph.js'
import { rbdWrite } from '../helpers/rbd-poke.js'
import { ship } from '../helpers/ship.js'

const MiB = 1 << 20
let A: Cluster
let B: Cluster
let stop = async () => {}
let n = 0

beforeAll(async () => {
  if (CEPH_SKIP_REASON) return
  const c = await startClusters(2)
  ;[A, B] = c.clusters as [Cluster, Cluster]
  stop = c.stop
}, 180_000)
afterAll(() => stop(), 60_000)

const driver = (c: Cluster, image: string) =>
  new RbdDriver({
    pool: 'rbd',
    image,
    connection: { conf: c.conf, timeoutSeconds: 30 },
    wholeObject: false,
    stageLimit: 0,
  })

async function metaGet(c: Cluster, spec: string): Promise<string | undefined> {
  return c.rbd('image-meta', 'get', spec, MARKER_KEY).then(
    (s) => s.trim(),
    () => undefined,
  )
}

/** The first defined answer of `get`, polled for up to 10 s. */
async function waitFor<T>(get: () => Promise<T | undefined>): Promise<T> {
  for (let i = 0; i < 100; i++) {
    const v = await get()
    if (v !== undefined) return v
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error('timed out waiting')
}

/** The marker once the last apply's removal had time to land (undefined when gone). */
async function markerAfterSettling(image: string): Promise<string | undefined> {
  let marker = await metaGet(B, `rbd/${image}`)
  for (let i = 0; i < 50 && marker !== undefined; i++) {
    await new Promise((r) => setTimeout(r, 100))
    marker = await metaGet(B, `rbd/${image}`)
  }
  return marker
}

async function twoRounds() {
  const image = `mk${process.pid}x${n++}`
  await rbdWrite(A, `rbd/${image}`, 0, Buffer.alloc(64 * 1024, 1), 8 * MiB)
  const src = driver(A, image)
  const dst = driver(B, image)
  await ship(src, dst, { to: 'snapferry-0000-a' })
  await rbdWrite(A, `rbd/${image}`, 2 * MiB, Buffer.alloc(4096, 2))
  await ship(src, dst, { from: 'snapferry-0000-a', to: 'snapferry-0001-a' })
  // Markers written by hand below must not be removed by this apply's own late removal.
  expect(await markerAfterSettling(image)).toBeUndefined()
  return { image, src, dst }
}

const describeCeph = CEPH_SKIP_REASON ? describe.skip : describe

describeCeph('rbd apply marker', () => {
  it("a finished apply's leftover marker is no obstacle; each apply's own marker is gone moments after it returns", async () => {
    const { image, src, dst } = await twoRounds()
    // As if the agent died right after import-diff made the end snapshot, before removing the marker.
    const leftover = JSON.stringify({
      fromSnap: 'snapferry-0000-a',
      toSnap: 'snapferry-0001-a',
      startedAt: 'x',
    })
    await B.rbd('image-meta', 'set', `rbd/${image}`, MARKER_KEY, leftover)
    expect(await dst.checkHead('snapferry-0001-a')).toEqual({ matches: true })
    await rbdWrite(A, `rbd/${image}`, 4 * MiB, Buffer.alloc(4096, 3))
    await ship(src, dst, { from: 'snapferry-0001-a', to: 'snapferry-0002-a' })
    const last = await ship(src, dst, { from: 'snapferry-0002-a', to: 'snapferry-0003-a' })
    // The apply says where its time went, in order: the checks, the marker, the whole delta written
    // to import-diff, then import-diff's own finish.
    const ph = last.imported.phasesMs ?? {}
    expect(Object.keys(ph).sort()).toEqual(
      [
        'checks passed',
        'delta written',
        'destination state',
        'first bytes',
        'import-diff done',
        'marker set',
      ].sort(),
    )
    // A delta's checks need only the destination's state; the first bytes may come before or after.
    expect(ph['checks passed']).toBeGreaterThanOrEqual(ph['destination state'] ?? 0)
    expect(ph['marker set']).toBeGreaterThanOrEqual(ph['checks passed'] ?? 0)
    expect(ph['delta written']).toBeGreaterThanOrEqual(
      Math.max(ph['marker set'] ?? 0, ph['first bytes'] ?? 0),
    )
    expect(ph['import-diff done']).toBeGreaterThanOrEqual(ph['delta written'] ?? 0)
    // And how its streaming split between waiting for the delta and handing it to import-diff.
    const w = last.imported.waitsMs
    expect(Object.keys(w ?? {}).sort()).toEqual(['forDelta', 'forDestination'])
    expect(w?.forDelta).toBeGreaterThanOrEqual(0)
    expect(w?.forDestination).toBeGreaterThanOrEqual(0)
    expect((w?.forDelta ?? 0) + (w?.forDestination ?? 0)).toBeLessThanOrEqual(
      (ph['import-diff done'] ?? 0) + 1,
    )
    // The last apply removes its own marker after returning: gone within moments.
    expect(await markerAfterSettling(image)).toBeUndefined()
    const [a, b] = await Promise.all([
      src.checksum({ snapshot: 'snapferry-0003-a' }),
      dst.checksum({ snapshot: 'snapferry-0003-a' }),
    ])
    expect(b.digest).toBe(a.digest)
  }, 120_000)

  it("sets a delta's marker while its first bytes are still on their way; a stream that fails before them takes it back", async () => {
    const { image, src, dst } = await twoRounds()
    await rbdWrite(A, `rbd/${image}`, 4 * MiB, Buffer.alloc(4096, 4))
    await src.createSnapshot('snapferry-0002-a')
    const delta = new PassThrough()
    const exported = src.exportDiff({ fromSnap: 'snapferry-0001-a', toSnap: 'snapferry-0002-a' }, delta)
    const held = new PassThrough()
    const applied = dst.importDiff({ fromSnap: 'snapferry-0001-a', toSnap: 'snapferry-0002-a' }, held)
    // Not one byte of the delta has arrived, and the destination is already marked.
    const marked = JSON.parse((await waitFor(() => metaGet(B, `rbd/${image}`))) as string)
    expect(marked).toMatchObject({ fromSnap: 'snapferry-0001-a', toSnap: 'snapferry-0002-a' })
    delta.pipe(held)
    const [, imported] = await Promise.all([exported, applied])
    const ph = imported.phasesMs ?? {}
    expect(ph['marker set']).toBeLessThan(ph['first bytes'] ?? 0)
    expect(await markerAfterSettling(image)).toBeUndefined()
    const [a, b] = await Promise.all([
      src.checksum({ snapshot: 'snapferry-0002-a' }),
      dst.checksum({ snapshot: 'snapferry-0002-a' }),
    ])
    expect(b.digest).toBe(a.digest)

    // A stream that dies before its first bytes: nothing was written, so the marker goes again.
    const dying = new PassThrough()
    const failed = dst.importDiff({ fromSnap: 'snapferry-0002-a', toSnap: 'snapferry-0003-a' }, dying)
    await waitFor(() => metaGet(B, `rbd/${image}`))
    dying.destroy(new Error('source gone'))
    expect(await failed.catch((e: Error) => e.message)).toContain('source gone')
    expect(await markerAfterSettling(image)).toBeUndefined()
    expect(await dst.checkHead('snapferry-0002-a')).toEqual({ matches: true })
  }, 120_000)

  it('a marker whose end snapshot is missing is an interrupted apply: a plain delta is refused', async () => {
    const { image, src, dst } = await twoRounds()
    const interrupted = JSON.stringify({
      fromSnap: 'snapferry-0001-a',
      toSnap: 'snapferry-0002-a',
      startedAt: 'x',
    })
    await B.rbd('image-meta', 'set', `rbd/${image}`, MARKER_KEY, interrupted)
    const head = await dst.checkHead('snapferry-0001-a')
    expect(head).toMatchObject({ matches: false, reason: 'interrupted-apply' })
    const e = await ship(src, dst, { from: 'snapferry-0001-a', to: 'snapferry-0002-a' }).catch(
      (x: SnapferryError) => x,
    )
    expect((e as SnapferryError).code).toBe('DEST_HEAD_DIVERGED')
    expect((e as SnapferryError).message).toContain("an apply of 'snapferry-0002-a'")
    // The image the session opened for the marker was closed again: no watcher is left behind.
    expect((await B.rbd('status', `rbd/${image}`)).trim()).toBe('Watchers: none')
  }, 120_000)
})
