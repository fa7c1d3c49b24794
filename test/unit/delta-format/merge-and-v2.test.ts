import { describe, expect, it } from 'vitest'
import { decodeDiff } from '../../../src/delta-format/diff-decoder.js'
import { encodeDiffV1 } from '../../../src/delta-format/diff-encoder.js'
import type { DataRecord, DiffHeader } from '../../../src/delta-format/diff-records.js'
import { decodeImageV2 } from '../../../src/delta-format/image-v2-decoder.js'
import { mergeDiffs } from '../../../src/delta-format/merge-diffs.js'
import { SnapferryError } from '../../../src/errors/snapferry-error.js'
import { applyToBuffer, collect, fromBuffers } from '../../helpers/diff-oracle.js'
import { mulberry32, randInt, randomBytes } from '../../helpers/random.js'

function randomRecords(rnd: () => number, size: number, max: number): DataRecord[] {
  const recs: DataRecord[] = []
  let off = 0
  while (recs.length < max) {
    off += randInt(rnd, 0, Math.max(1, size / 8))
    if (off >= size) break
    const len = Math.min(randInt(rnd, 1, Math.max(1, size / 6)), size - off)
    recs.push(
      rnd() < 0.3
        ? { kind: 'zero', offset: off, length: len }
        : { kind: 'write', offset: off, data: randomBytes(rnd, len) },
    )
    off += len
  }
  return recs
}

async function* iter<T>(xs: readonly T[]): AsyncGenerator<T> {
  yield* xs
}

describe('mergeDiffs (rbd merge-diff semantics)', () => {
  it('applying the merge equals applying both in order, incl. growth and shrink (property, seeded)', async () => {
    for (let seed = 1; seed <= 300; seed++) {
      const rnd = mulberry32(seed)
      const s0 = randInt(rnd, 1, 5000)
      const s1 = randInt(rnd, 1, 5000)
      const s2 = randInt(rnd, 1, 5000)
      const h1: DiffHeader = { fromSnap: 'a', toSnap: 'b', size: s1 }
      const h2: DiffHeader = { fromSnap: 'b', toSnap: 'c', size: s2 }
      const r1 = randomRecords(rnd, s1, 8)
      const r2 = randomRecords(rnd, s2, 8)
      const base = randomBytes(rnd, s0)
      const expected = applyToBuffer(applyToBuffer(base, h1, r1), h2, r2)
      const merged = mergeDiffs({ header: h1, records: iter(r1) }, { header: h2, records: iter(r2) })
      expect(merged.header).toEqual({ fromSnap: 'a', toSnap: 'c', size: s2 })
      const recs = await collect(merged.records)
      // The merged stream must itself be a valid diff: encode and decode it strictly.
      const bytes = Buffer.concat(await collect(encodeDiffV1(merged.header, recs)))
      const again = await decodeDiff(fromBuffers([bytes]))
      const got = applyToBuffer(base, again.header, await collect(again.records))
      expect(got.equals(expected), `seed ${seed}`).toBe(true)
    }
  })

  it('refuses diffs that are not consecutive', () => {
    const a = { header: { fromSnap: 'a', toSnap: 'b', size: 10 }, records: iter<DataRecord>([]) }
    const c = { header: { fromSnap: 'c', toSnap: 'd', size: 10 }, records: iter<DataRecord>([]) }
    expect(() => mergeDiffs(a, c)).toThrowError(
      "cannot merge: the first diff ends at 'b' but the second starts at 'c'",
    )
  })
})

/** Hand-built v2 pieces, byte for byte as Ceph 16.2.15 writes them (incl. the 'p' length quirk). */
function v2Record(tag: string, payload: Buffer): Buffer {
  const h = Buffer.alloc(9)
  h.write(tag, 0, 'latin1')
  h.writeBigUInt64LE(BigInt(payload.length), 1)
  return Buffer.concat([h, payload])
}
const le64 = (n: number) => {
  const b = Buffer.alloc(8)
  b.writeBigUInt64LE(BigInt(n))
  return b
}
const str = (s: string) => Buffer.concat([Buffer.from([s.length, 0, 0, 0]), Buffer.from(s)])

function v2Diff(opts: {
  from?: string
  to?: string
  size: number
  writes: [number, Buffer][]
  protectedQuirk?: boolean
}): Buffer {
  const parts: Buffer[] = [Buffer.from('rbd diff v2\n')]
  if (opts.from) parts.push(v2Record('f', str(opts.from)))
  if (opts.to) {
    parts.push(v2Record('t', str(opts.to)))
    // Ceph writes 'p' with declared length 8 but a single byte of payload.
    parts.push(Buffer.concat([Buffer.from('p'), le64(opts.protectedQuirk ? 8 : 1), Buffer.from([0])]))
  }
  parts.push(v2Record('s', le64(opts.size)))
  for (const [off, data] of opts.writes)
    parts.push(v2Record('w', Buffer.concat([le64(off), le64(data.length), data])))
  parts.push(v2Record('X', Buffer.from('unknown tags are skipped')))
  parts.push(Buffer.from('e'))
  return Buffer.concat(parts)
}

describe('rbd diff v2 and rbd image v2', () => {
  it('decodes a v2 diff with the p-record quirk and skips unknown tags', async () => {
    const bytes = v2Diff({
      from: 'a',
      to: 'b',
      size: 100,
      writes: [[10, Buffer.from('xyz')]],
      protectedQuirk: true,
    })
    const d = await decodeDiff(fromBuffers([bytes], 5))
    expect(d.version).toBe(2)
    expect(d.header).toEqual({ fromSnap: 'a', toSnap: 'b', size: 100, protected: false })
    const recs = await collect(d.records)
    expect(applyToBuffer(Buffer.alloc(0), d.header, recs).subarray(10, 13).toString()).toBe('xyz')
  })

  it('decodes an export-format 2 image: header, image-meta, snapshot diffs and head', async () => {
    const meta = Buffer.concat([str('conf_rbd_cache'), str('false')])
    const img = Buffer.concat([
      Buffer.from('rbd image v2\n'),
      v2Record('O', le64(22)),
      v2Record('T', le64(61)),
      v2Record('U', le64(4 << 20)),
      v2Record('C', le64(1)),
      v2Record('M', meta),
      Buffer.from('E'),
      Buffer.from('rbd image diffs v2\n'),
      le64(2),
      v2Diff({ to: 's1', size: 64, writes: [[0, Buffer.from('first')]], protectedQuirk: true }),
      v2Diff({ from: 's1', size: 64, writes: [[5, Buffer.from('-second')]] }),
    ])
    const decoded = await decodeImageV2(fromBuffers([img], 7))
    expect(decoded.header).toEqual({
      order: 22,
      features: 61n,
      stripeUnit: 4 << 20,
      stripeCount: 1,
      meta: [['conf_rbd_cache', 'false']],
    })
    let image: Buffer = Buffer.alloc(0)
    const snaps: (string | undefined)[] = []
    for await (const d of decodeImageV2Diffs(decoded)) {
      image = applyToBuffer(image, d.header, d.records)
      snaps.push(d.header.toSnap)
    }
    expect(snaps).toEqual(['s1', undefined])
    expect(image.subarray(0, 12).toString()).toBe('first-second')
  })

  it('rejects a truncated image stream with the byte offset', async () => {
    const img = Buffer.concat([Buffer.from('rbd image v2\n'), v2Record('O', le64(22)).subarray(0, 5)])
    await expect(decodeImageV2(fromBuffers([img]))).rejects.toThrowError(SnapferryError)
    await expect(decodeImageV2(fromBuffers([img]))).rejects.toThrowError(
      'stream ends inside a record length (at byte 14 of the diff stream)',
    )
  })
})

async function* decodeImageV2Diffs(decoded: Awaited<ReturnType<typeof decodeImageV2>>) {
  for await (const d of decoded.diffs) yield { header: d.header, records: await collect(d.records) }
}
