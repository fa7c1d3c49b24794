/**
 * The librbd session against a real cluster: every short call answers exactly what the rbd CLI answers
 * (values and error codes), an abort rejects at once, an unusable session falls back to the CLI, and a
 * session that dies is replaced on the next call.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { LibrbdImage } from '../../src/drivers/rbd/librbd-image.js'
import { librbdSession } from '../../src/drivers/rbd/librbd-session.js'
import type { RbdConnection } from '../../src/drivers/rbd/rbd-cli.js'
import { RbdImage } from '../../src/drivers/rbd/rbd-image.js'
import type { SnapferryError } from '../../src/errors/snapferry-error.js'
import { CEPH_SKIP_REASON, type Cluster, startClusters } from '../helpers/ceph.js'
import { mulberry32, randomBytes } from '../helpers/random.js'
import { rbdWrite } from '../helpers/rbd-poke.js'

const describeCeph = CEPH_SKIP_REASON ? describe.skip : describe
let c: Cluster
let conn: RbdConnection
let stop = async () => {}
let n = 0

beforeAll(async () => {
  if (CEPH_SKIP_REASON) return
  const s = await startClusters(1)
  c = s.clusters[0] as Cluster
  conn = { conf: c.conf, timeoutSeconds: 20 }
  stop = s.stop
}, 180_000)
afterAll(() => stop(), 60_000)

const MiB = 1 << 20
const spec = () => `rbd/ls${process.pid}x${n++}`
const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => 'resolved',
    (e: SnapferryError) => e.code,
  )

describeCeph('librbd session: the same answers as the rbd CLI', () => {
  it('size, snapshots, diffs and image-meta match the CLI call for call', async () => {
    const s = spec()
    await c.rbd('create', '--size', `${16 * MiB}B`, s)
    const lib = new LibrbdImage(conn, s, 'test image')
    const cli = new RbdImage(conn, s, 'test image')
    await rbdWrite(c, s, 0, randomBytes(mulberry32(1), 300_000))
    await lib.snapCreate('snapferry-0000-a')
    await rbdWrite(c, s, 5 * MiB, randomBytes(mulberry32(2), 10_000))
    await rbdWrite(c, s, 9 * MiB + 4096, randomBytes(mulberry32(3), 4096))
    await cli.snapCreate('snapferry-0001-a')
    await rbdWrite(c, s, 12 * MiB, randomBytes(mulberry32(4), 8192))

    expect(await lib.size()).toBe(16 * MiB)
    expect(await lib.size()).toBe(await cli.size())
    const [ls, cs] = [await lib.snapshots(), await cli.snapshots()]
    expect(ls.map((x) => [x.id, x.name, x.size])).toEqual(cs.map((x) => [x.id, x.name, x.size]))
    expect(ls.map((x) => Date.parse(x.timestamp))).toEqual(cs.map((x) => Date.parse(x.timestamp)))
    for (const from of [undefined, 'snapferry-0000-a', 'snapferry-0001-a'])
      for (const wholeObject of [false, true]) {
        const got = await lib.diff(from, undefined, { wholeObject })
        expect(got).toEqual(await cli.diff(from, undefined, { wholeObject }))
        if (from === 'snapferry-0001-a' && !wholeObject)
          expect(got).toEqual([{ offset: 12 * MiB, length: 8192, exists: true }])
      }

    expect(await lib.metaGet('snapferry.applying')).toBeUndefined()
    await lib.metaSet('snapferry.applying', '{"toSnap":"x"}')
    expect(await cli.metaGet('snapferry.applying')).toBe('{"toSnap":"x"}')
    expect(await lib.metaGet('snapferry.applying')).toBe('{"toSnap":"x"}')
    await lib.metaRemove('snapferry.applying')
    expect(await cli.metaGet('snapferry.applying')).toBeUndefined()

    await lib.snapRemove('snapferry-0000-a')
    expect((await cli.snapshots()).map((x) => x.name)).toEqual(['snapferry-0001-a'])
  })

  it('errors carry the codes the CLI gives', async () => {
    const s = spec()
    await c.rbd('create', '--size', `${4 * MiB}B`, s)
    const lib = new LibrbdImage(conn, s, 'test image')
    const cli = new RbdImage(conn, s, 'test image')
    await lib.snapCreate('snapferry-0000-e')
    for (const img of [lib, cli]) {
      expect(await codeOf(img.snapCreate('snapferry-0000-e'))).toBe('VOLUME_EXISTS')
      expect(await codeOf(img.snapRemove('snapferry-0009-e'))).toBe('VOLUME_NOT_FOUND')
      expect(await codeOf(img.metaRemove('no.such.key'))).toBe('VOLUME_NOT_FOUND')
      expect(await codeOf(img.diff('snapferry-0009-e'))).toBe('VOLUME_NOT_FOUND')
    }
    const e = await lib.snapCreate('snapferry-0000-e').catch((x: SnapferryError) => x)
    expect(e?.message).toContain('snap create snapferry-0000-e (test image): librbd:')
    expect(e?.message).toContain('(17) File exists')

    const missing = spec()
    for (const img of [new LibrbdImage(conn, missing, 'm'), new RbdImage(conn, missing, 'm')]) {
      expect(await img.size()).toBeUndefined()
      expect(await img.snapshots()).toEqual([])
      expect(await img.metaGet('snapferry.applying')).toBeUndefined()
      expect(await codeOf(img.snapCreate('snapferry-0000-m'))).toBe('VOLUME_NOT_FOUND')
    }
  })

  it('an aborted call rejects at once with the abort reason', async () => {
    const s = spec()
    await c.rbd('create', '--size', `${4 * MiB}B`, s)
    const lib = new LibrbdImage(conn, s, 'test image')
    await lib.size()
    const ac = new AbortController()
    const p = lib.diff(undefined, ac.signal)
    ac.abort(new Error('stop now'))
    await expect(p).rejects.toThrow('stop now')
    expect(await lib.size()).toBe(4 * MiB)
  })

  it('a session that cannot connect leaves the calls to the CLI, which names the problem', async () => {
    const bad: RbdConnection = { conf: '/nonexistent/ceph.conf', timeoutSeconds: 2 }
    expect(await librbdSession(bad)).toBeUndefined()
    const e = await new LibrbdImage(bad, spec(), 'bad image').size().then(
      () => undefined,
      (x: SnapferryError) => x,
    )
    expect(e?.code).toBe('RBD_CLI_FAILED')
    expect(e?.message).toContain('rbd exited with status 1')
    expect(e?.message).toContain('/nonexistent/ceph.conf')
  })

  it('a session that dies fails its calls in flight as transient and is replaced on the next call', async () => {
    const s = spec()
    await c.rbd('create', '--size', `${4 * MiB}B`, s)
    const own: RbdConnection = { ...conn, id: 'admin' }
    const lib = new LibrbdImage(own, s, 'test image')
    expect(await lib.size()).toBe(4 * MiB)
    const first = await librbdSession(own)
    const inFlight = lib.diff(undefined)
    process.kill(first?.pid as number, 'SIGKILL')
    const e = await inFlight.then(
      () => undefined,
      (x: SnapferryError) => x,
    )
    // The diff may have been answered before the kill landed; if not, it failed as transient.
    if (e) {
      expect(e.code).toBe('RBD_CLI_FAILED')
      expect(e.transient).toBe(true)
      expect(e.message).toContain('the librbd session (python3-rbd) ended')
    }
    expect(await lib.size()).toBe(4 * MiB)
    expect(await librbdSession(own)).not.toBe(first)
  })
})
