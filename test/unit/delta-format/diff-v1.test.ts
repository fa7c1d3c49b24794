import { describe, expect, it } from 'vitest'
import { decodeDiff } from '../../../src/delta-format/diff-decoder.js'
import { encodeDiffV1, encodeExtentHead, encodeHeaderV1 } from '../../../src/delta-format/diff-encoder.js'
import type { DataRecord, DiffHeader } from '../../../src/delta-format/diff-records.js'
import { SnapferryError } from '../../../src/errors/snapferry-error.js'
import { applyToBuffer, collect, fromBuffers } from '../../helpers/diff-oracle.js'
import { mulberry32, randInt, randomBytes } from '../../helpers/random.js'

async function encode(h: DiffHeader, recs: DataRecord[]): Promise<Buffer> {
  return Buffer.concat(await collect(encodeDiffV1(h, recs)))
}

async function decodeAll(bytes: Buffer, chunk = 0) {
  const d = await decodeDiff(fromBuffers([bytes], chunk))
  return { header: d.header, version: d.version, records: await collect(d.records) }
}

async function decodeError(bytes: Buffer): Promise<SnapferryError> {
  try {
    await decodeAll(bytes)
  } catch (e) {
    expect(e).toBeInstanceOf(SnapferryError)
    return e as SnapferryError
  }
  throw new Error('expected the decoder to fail')
}

describe('rbd diff v1 encoding', () => {
  it('writes the exact bytes rbd export-diff writes for an empty delta (34 bytes for f/t/s/e)', async () => {
    const bytes = await encode({ fromSnap: 'a', toSnap: 'b', size: 1 << 30 }, [])
    expect(bytes.length).toBe(34)
    expect(bytes.subarray(0, 12).toString('latin1')).toBe('rbd diff v1\n')
    expect(bytes.toString('hex')).toBe(
      `${Buffer.from('rbd diff v1\n').toString('hex')}66010000006174010000006273${'0000004000000000'}65`,
    )
  })

  it('round-trips header and records, whatever the input chunking', async () => {
    const recs: DataRecord[] = [
      { kind: 'write', offset: 0, data: Buffer.from('hello') },
      { kind: 'zero', offset: 4096, length: 8192 },
      { kind: 'write', offset: 20000, data: Buffer.alloc(3000, 7) },
    ]
    const header = { fromSnap: 'snap-1', toSnap: 'snap-2', size: 65536 }
    const bytes = await encode(header, recs)
    for (const chunk of [0, 1, 3, 17, 1000]) {
      const got = await decodeAll(bytes, chunk)
      expect(got.header).toEqual(header)
      const img = applyToBuffer(Buffer.alloc(0), got.header, got.records)
      expect(img.equals(applyToBuffer(Buffer.alloc(0), header, recs))).toBe(true)
    }
  })

  it('joins contiguous write pieces into one record up to the limit, and nothing else', async () => {
    const KiB = 1024
    const piece = (offset: number, n: number, fill: number): DataRecord => ({
      kind: 'write',
      offset,
      data: Buffer.alloc(n, fill),
    })
    const recs: DataRecord[] = [
      piece(0, 64 * KiB, 1),
      piece(64 * KiB, 64 * KiB, 2),
      piece(128 * KiB, 64 * KiB, 3), // contiguous: one record of 192 KiB so far
      piece(256 * KiB, 4 * KiB, 4), // a gap: a new record
      { kind: 'zero', offset: 260 * KiB, length: 4 * KiB }, // a zero record ends a run
      piece(264 * KiB, 4 * KiB, 5),
      piece(268 * KiB, 100 * KiB, 6), // contiguous, but past the 160 KiB limit with what follows
      piece(368 * KiB, 100 * KiB, 7),
    ]
    const header = { size: 1 << 20 }
    const bytes = Buffer.concat(await collect(encodeDiffV1(header, recs, 160 * KiB)))
    // Decoded whole (one input chunk), each record arrives as one piece: its extent is the record's.
    const got = (await decodeAll(bytes)).records.map((r) => [
      r.kind,
      r.offset,
      r.kind === 'write' ? r.data.length : r.length,
    ])
    expect(got).toEqual([
      ['write', 0, 128 * KiB], // 3 pieces would make 192 KiB > 160 KiB: the third starts the next
      ['write', 128 * KiB, 64 * KiB],
      ['write', 256 * KiB, 4 * KiB],
      ['zero', 260 * KiB, 4 * KiB],
      ['write', 264 * KiB, 104 * KiB],
      ['write', 368 * KiB, 100 * KiB],
    ])
    const img = applyToBuffer(Buffer.alloc(0), header, (await decodeAll(bytes)).records)
    expect(img.equals(applyToBuffer(Buffer.alloc(0), header, recs))).toBe(true)
  })

  it('re-encodes a record the decoder split into pieces as the one record it was', async () => {
    const data = randomBytes(mulberry32(7), 3 << 20)
    const bytes = await encode({ size: 8 << 20 }, [{ kind: 'write', offset: 1 << 20, data }])
    // Decoded from 64 KiB reads (a pipe's), the 3 MiB record arrives as 49 pieces (the header shifts them).
    const pieces = (await decodeAll(bytes, 64 << 10)).records
    expect(pieces.length).toBe(49)
    const again = await encode({ size: 8 << 20 }, pieces)
    expect(again.equals(bytes)).toBe(true)
  })

  it('round-trips random diffs (property, seeded)', async () => {
    for (let seed = 1; seed <= 60; seed++) {
      const rnd = mulberry32(seed)
      const size = randInt(rnd, 1, 300_000)
      const recs: DataRecord[] = []
      let off = 0
      while (off < size && recs.length < 40) {
        off += randInt(rnd, 0, 20_000)
        if (off >= size) break
        const len = Math.min(randInt(rnd, 1, 30_000), size - off)
        recs.push(
          rnd() < 0.3
            ? { kind: 'zero', offset: off, length: len }
            : { kind: 'write', offset: off, data: randomBytes(rnd, len) },
        )
        off += len
      }
      const header: DiffHeader =
        rnd() < 0.5 ? { size } : { fromSnap: `s${seed}`, toSnap: `s${seed + 1}`, size }
      const bytes = await encode(header, recs)
      const got = await decodeAll(bytes, randInt(rnd, 0, 5000))
      expect(got.header, `seed ${seed}`).toEqual(header)
      const base = randomBytes(rnd, randInt(rnd, 0, size))
      expect(
        applyToBuffer(base, got.header, got.records).equals(applyToBuffer(base, header, recs)),
        `seed ${seed}`,
      ).toBe(true)
    }
  })
})

describe('rbd diff v1 decoding rejects corrupt input with the byte offset', () => {
  const header = encodeHeaderV1({ size: 1 << 20 })

  it('bad banner', async () => {
    const e = await decodeError(Buffer.from('rbd diff v9\n\x73'))
    expect(e.code).toBe('DIFF_BAD_BANNER')
    expect(e.message).toBe(
      `not an rbd diff: expected the 'rbd diff v1 or v2' banner, found "rbd diff v9\\n" (at byte 0 of the diff stream)`,
    )
  })

  it('empty stream', async () => {
    const e = await decodeError(Buffer.alloc(0))
    expect(e.code).toBe('DIFF_TRUNCATED')
  })

  it('truncated inside write data', async () => {
    const bytes = Buffer.concat([header, encodeExtentHead('write', 0, 100), Buffer.alloc(50)])
    const e = await decodeError(bytes)
    expect(e.code).toBe('DIFF_TRUNCATED')
    expect(e.message).toBe('stream ends inside the data of extent 0+100 (at byte 88 of the diff stream)')
  })

  it('missing end record', async () => {
    const e = await decodeError(header)
    expect(e.code).toBe('DIFF_TRUNCATED')
    expect(e.message).toBe('stream ends where a header record was expected (at byte 21 of the diff stream)')
  })

  it('out-of-order extents', async () => {
    const bytes = Buffer.concat([
      header,
      encodeExtentHead('zero', 8192, 4096),
      encodeExtentHead('zero', 4096, 10),
      Buffer.from('e'),
    ])
    const e = await decodeError(bytes)
    expect(e.code).toBe('DIFF_OUT_OF_ORDER')
    expect(e.message).toBe(
      'extent at 4096 starts before the previous extent ends (12288) (at byte 38 of the diff stream)',
    )
  })

  it('overlapping extents', async () => {
    const bytes = Buffer.concat([
      header,
      encodeExtentHead('zero', 0, 4096),
      encodeExtentHead('zero', 4095, 10),
      Buffer.from('e'),
    ])
    expect((await decodeError(bytes)).code).toBe('DIFF_OUT_OF_ORDER')
  })

  it('an absurd length never allocates: it is rejected against the image size', async () => {
    const bytes = Buffer.concat([header, encodeExtentHead('write', 0, 2 ** 52), Buffer.alloc(10)])
    const e = await decodeError(bytes)
    expect(e.code).toBe('DIFF_BAD_RECORD')
    expect(e.message).toBe(
      `extent 0+${2 ** 52} extends past the image size 1048576 (at byte 21 of the diff stream)`,
    )
  })

  it('a length beyond 2^53 is reported as absurd', async () => {
    const h = Buffer.from(header)
    const bad = encodeExtentHead('zero', 0, 1)
    bad.writeBigUInt64LE(2n ** 63n, 9)
    const e = await decodeError(Buffer.concat([h, bad, Buffer.from('e')]))
    expect(e.code).toBe('DIFF_TOO_LARGE')
    expect(e.message).toBe(`extent length ${2n ** 63n} is absurdly large (at byte 30 of the diff stream)`)
  })

  it('zero-length extent', async () => {
    const e = await decodeError(Buffer.concat([header, encodeExtentHead('zero', 0, 0), Buffer.from('e')]))
    expect(e.code).toBe('DIFF_BAD_RECORD')
  })

  it('unknown tag', async () => {
    const e = await decodeError(Buffer.concat([header, Buffer.from('q')]))
    expect(e.code).toBe('DIFF_UNKNOWN_TAG')
    expect(e.message).toBe('unknown record tag 0x71 (at byte 21 of the diff stream)')
  })

  it('data record before the size record', async () => {
    const bytes = Buffer.concat([
      Buffer.from('rbd diff v1\n'),
      encodeExtentHead('zero', 0, 1),
      Buffer.from('e'),
    ])
    const e = await decodeError(bytes)
    expect(e.code).toBe('DIFF_BAD_RECORD')
    expect(e.message).toBe(
      "no image size ('s') record before the first data record (at byte 12 of the diff stream)",
    )
  })

  it('absurd snapshot-name length', async () => {
    const bytes = Buffer.concat([Buffer.from('rbd diff v1\nf'), Buffer.from([0xff, 0xff, 0xff, 0x7f])])
    expect((await decodeError(bytes)).code).toBe('DIFF_TOO_LARGE')
  })

  it('trailing garbage after the end record', async () => {
    const e = await decodeError(Buffer.concat([header, Buffer.from('eXYZ')]))
    expect(e.code).toBe('DIFF_BAD_RECORD')
    expect(e.message).toBe('unexpected bytes after the end record (at byte 22 of the diff stream)')
  })

  it('random corruption never crashes: it either decodes or fails with a SnapferryError', async () => {
    const good = await encode({ fromSnap: 'a', toSnap: 'b', size: 100_000 }, [
      { kind: 'write', offset: 10, data: Buffer.alloc(500, 1) },
      { kind: 'zero', offset: 2000, length: 5000 },
      { kind: 'write', offset: 9000, data: Buffer.alloc(700, 2) },
    ])
    const rnd = mulberry32(42)
    for (let i = 0; i < 500; i++) {
      const bad = Buffer.from(good)
      const flips = randInt(rnd, 1, 4)
      for (let f = 0; f < flips; f++) bad[randInt(rnd, 0, bad.length - 1)] = randInt(rnd, 0, 255)
      const cut = rnd() < 0.3 ? bad.subarray(0, randInt(rnd, 0, bad.length)) : bad
      try {
        await decodeAll(cut)
      } catch (e) {
        expect(e, `iteration ${i}`).toBeInstanceOf(SnapferryError)
      }
    }
  })
})
