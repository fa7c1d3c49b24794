import { createHash } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { xxhash128 } from 'hash-wasm'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ackWatcher, relayFrames } from '../../../src/transfer/frame-relay.js'
import { SegmentCodec } from '../../../src/transfer/segment-codec.js'
import { decodeFrameHeader, FRAME_HEADER_BYTES, FrameParser } from '../../../src/transfer/segment-frame.js'
import { SegmentReceiver } from '../../../src/transfer/segment-receiver.js'
import { SegmentSender } from '../../../src/transfer/segment-sender.js'
import { mulberry32, randomBytes } from '../../helpers/random.js'

let dir: string
let server: Server
const accepted: ((s: Socket) => void)[] = []
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'sf-seg-'))
  server = createServer((s) => accepted.shift()?.(s))
  await new Promise<void>((r) => server.listen(path.join(dir, 's.sock'), r))
})
afterAll(async () => {
  server.close()
  await rm(dir, { recursive: true, force: true })
})

/** A real unix-socket connection: [our end, the agent's end]. */
async function socketPair(): Promise<[Socket, Socket]> {
  const theirs = new Promise<Socket>((r) => accepted.push(r))
  const ours = connect(path.join(dir, 's.sock'))
  await new Promise((r) => ours.once('connect', r))
  return [ours, await theirs]
}

/** VM-like data: runs of zeros, text, and random bytes. */
function mixed(seed: number, size: number): Buffer {
  const rnd = mulberry32(seed)
  const out = Buffer.alloc(size)
  for (let at = 0; at < size; at += 65536) {
    const kind = Math.floor(rnd() * 3)
    const n = Math.min(65536, size - at)
    if (kind === 1) out.write('log line: snapferry moved a block\n'.repeat(n / 34 + 1).slice(0, n), at)
    if (kind === 2) randomBytes(rnd, n).copy(out, at)
  }
  return out
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')

/** The stream digest computed independently: sha256 over the xxh128 of every 1 MiB segment. */
async function expectedDigest(data: Buffer): Promise<string> {
  const h = createHash('sha256')
  for (let at = 0; at < data.length; at += 1 << 20)
    h.update(Buffer.from(await xxhash128(data.subarray(at, at + (1 << 20))), 'hex'))
  return h.digest('hex')
}

async function collect(r: Readable): Promise<Buffer> {
  const parts: Buffer[] = []
  for await (const c of r) parts.push(c as Buffer)
  return Buffer.concat(parts)
}

interface Run {
  data: Buffer
  compression?: 'auto' | number
  corruptWireByte?: number
  /** Cut the first connection after this many frame bytes. */
  cutAfter?: number
  windowBytes?: number
  bufferBytes?: number
  /** Start reading the receiver's output only once it stopped accepting segments. */
  readLate?: boolean
}

/** Resolves once the receiver accepted no segment for 300 ms; returns the bytes it then held. */
async function acceptedWhileUnread(receiver: SegmentReceiver): Promise<number> {
  let last = -1
  for (let still = 0; still < 6; ) {
    await new Promise((r) => setTimeout(r, 50))
    still = receiver.stats.rawBytes === last ? still + 1 : 0
    last = receiver.stats.rawBytes
  }
  return last
}

async function transfer(r: Run) {
  const codec = await SegmentCodec.create()
  const sender = new SegmentSender({
    codec,
    compression: r.compression ?? 1,
    windowBytes: r.windowBytes ?? 8 << 20,
    label: 'volume t',
    resumable: true,
  })
  const receiver = new SegmentReceiver({
    codec: await SegmentCodec.create(),
    label: 'volume t',
    resumable: true,
    bufferBytes: r.bufferBytes,
  })
  let heldUnread: number | undefined
  const received = r.readLate
    ? acceptedWhileUnread(receiver).then((n) => {
        heldUnread = n
        return collect(receiver.output)
      })
    : collect(receiver.output)
  const producing = pipeline(Readable.from(chunks(r.data, 300_000)), sender.input)
  let cut = r.cutAfter
  const settled = Promise.all([sender.done, received])
  const relay = relayFrames({
    openReceiver: async () => {
      const [ours, theirs] = await socketPair()
      receiver.attach(theirs)
      return ours
    },
    openSender: async (from) => {
      const [ours, theirs] = await socketPair()
      sender.attach(theirs, from)
      return ours
    },
    settled,
    waitForLink: async () => {},
    meter: async (n) => {
      if (cut === undefined) return
      cut -= n
      if (cut <= 0) {
        cut = undefined
        throw new Error('link cut by the test')
      }
    },
    corruptWireByte: r.corruptWireByte,
    label: 'volume t',
    maxResumes: 5,
  })
  await producing
  const [stats, out] = await settled
  const rel = await relay
  return { stats, out, rel, sender, receiver, heldUnread }
}

function* chunks(b: Buffer, n: number) {
  for (let i = 0; i < b.length; i += n) yield b.subarray(i, i + n)
}

describe('segment frames', () => {
  it("the relay reads the receiver's acks across chunk boundaries and skips other lines", () => {
    const acks: number[] = []
    const watch = ackWatcher((n) => acks.push(n))
    watch(Buffer.from('{"next":0}\n{"ack":1}\n{"ac'))
    watch(Buffer.from('k":2}\n{"nack":2,"reason":"x"}\nnot json\n'))
    expect(acks).toEqual([1, 2])
  })

  it('rejects a damaged header by name', () => {
    const p = new FrameParser()
    p.push(Buffer.alloc(FRAME_HEADER_BYTES, 7))
    expect(() => p.next()).toThrow(/segment frame header is damaged: magic 07070707/)
    expect(() => decodeFrameHeader(Buffer.alloc(3))).toThrow(/short header/)
  })
})

describe('segment transfer (sender → relay → receiver over unix sockets)', () => {
  it('delivers mixed data byte-identical, compressed', async () => {
    const data = mixed(1, 9 * 1024 * 1024 + 12345)
    const { stats, out, rel, sender, receiver } = await transfer({ data })
    expect(sha(out)).toBe(sha(data))
    expect(stats.segments).toBe(10)
    // Both ends prove the same bytes: the digest over the segments' hashes, and the raw byte count.
    const proof = { streamDigest: await expectedDigest(data), streamBytes: data.length }
    expect(sender.digest()).toEqual(proof)
    expect(receiver.digest()).toEqual(proof)
    expect(stats.wireBytes).toBeLessThan(data.length * 0.8)
    expect(rel.resumes).toBe(0)
  })

  it('a damaged segment is refused, never passed on, and sent again', async () => {
    const data = mixed(2, 6 * 1024 * 1024)
    const { stats, out, rel, sender, receiver } = await transfer({ data, corruptWireByte: 1_000_000 })
    expect(sha(out)).toBe(sha(data))
    expect(receiver.stats.corruptSegments).toBe(1)
    // The refused copy is not in the receiver's proof, the good one is, once.
    expect(receiver.digest()).toEqual({ streamDigest: await expectedDigest(data), streamBytes: data.length })
    expect(receiver.digest()).toEqual(sender.digest())
    expect(stats.resentFrames).toBeGreaterThan(0)
    expect(rel.resumes).toBe(1)
  })

  it('a connection cut mid-stream resumes at the first segment the receiver lacks', async () => {
    const data = mixed(3, 12 * 1024 * 1024)
    const { stats, out, rel, sender, receiver } = await transfer({
      data,
      cutAfter: 5_000_000,
      compression: 0,
    })
    expect(sha(out)).toBe(sha(data))
    expect(rel.resumes).toBe(1)
    expect(receiver.digest()).toEqual(sender.digest())
    expect(receiver.digest().streamDigest).toBe(await expectedDigest(data))
    expect(receiver.stats.connections).toBe(2)
    // Only the segments in flight at the cut are sent twice, not the whole stream.
    expect(stats.resentFrames).toBeLessThanOrEqual(9)
    expect(stats.wireBytes).toBeLessThan(data.length + 10 * 1024 * 1024)
  })

  it('takes in up to its buffer while the driver reads nothing, then delivers it all intact', async () => {
    const data = mixed(5, 16 * 1024 * 1024)
    const small = await transfer({ data, readLate: true })
    expect(sha(small.out)).toBe(sha(data))
    // Default buffer: 4 MiB held (whole 1 MiB segments; frames already parsed when it filled may add one).
    expect(small.heldUnread).toBeGreaterThanOrEqual(4 << 20)
    expect(small.heldUnread).toBeLessThanOrEqual(5 << 20)
    const big = await transfer({ data, readLate: true, bufferBytes: 12 << 20 })
    expect(sha(big.out)).toBe(sha(data))
    expect(big.heldUnread).toBeGreaterThanOrEqual(12 << 20)
    expect(big.heldUnread).toBeLessThanOrEqual(13 << 20)
    // The whole stream was acknowledged long before the receiver's reader finished: its connection
    // closing then is the stream ending, not a break to resume from.
    expect(small.rel.resumes).toBe(0)
    const whole = await transfer({ data, readLate: true, bufferBytes: 32 << 20 })
    expect(sha(whole.out)).toBe(sha(data))
    expect(whole.heldUnread).toBe(data.length)
    expect(whole.rel.resumes).toBe(0)
  })

  it('with a segment age, a trickle is sent as it comes, not when 1 MiB has gathered', async () => {
    const codec = await SegmentCodec.create()
    const sender = new SegmentSender({
      codec,
      compression: 0,
      windowBytes: 8 << 20,
      label: 'volume t',
      resumable: true,
      maxSegmentAgeMs: 20,
    })
    const receiver = new SegmentReceiver({
      codec: await SegmentCodec.create(),
      label: 'volume t',
      resumable: true,
    })
    const [ours, theirs] = await socketPair()
    const [ours2, theirs2] = await socketPair()
    sender.attach(theirs, 0)
    receiver.attach(theirs2)
    ours.pipe(ours2)
    ours2.pipe(ours)
    const received = collect(receiver.output)
    const data = mixed(6, 300_000)
    // 100 KB, then nothing for 200 ms: the receiver must have it before anything else is written.
    sender.input.write(data.subarray(0, 100_000))
    await new Promise((r) => setTimeout(r, 200))
    expect(receiver.stats.rawBytes).toBe(100_000)
    sender.input.end(data.subarray(100_000))
    expect(sha(await received)).toBe(sha(data))
    await sender.done
    expect(sender.stats.segments).toBe(2)
    expect(receiver.digest()).toEqual(sender.digest())
    ours.destroy()
    ours2.destroy()
  })

  it('an empty stream is one end frame', async () => {
    const { stats, out } = await transfer({ data: Buffer.alloc(0) })
    expect(out.length).toBe(0)
    expect(stats.segments).toBe(0)
  })

  it('auto compression sends incompressible data raw', async () => {
    const data = randomBytes(mulberry32(4), 48 * 1024 * 1024)
    const { stats, out } = await transfer({ data, compression: 'auto' })
    expect(sha(out)).toBe(sha(data))
    // zstd cannot shrink random bytes: every frame goes raw whatever level was tried.
    expect(Object.keys(stats.rawByLevel)).toEqual(['0'])
  }, 30_000)
})
