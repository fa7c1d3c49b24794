/**
 * The controller's part of a framed transfer: splice the sender's connection into the receiver's,
 * and when either breaks before both ends report the transfer finished (a dropped link, a damaged
 * segment refused by the receiver), wait for the link and splice new connections, starting at the
 * segment the receiver asks for. Bytes pass through untouched except for metering: the controller
 * neither decompresses nor re-hashes (the receiver verifies every segment).
 */
import type { Duplex } from 'node:stream'
import { readHeaderLine } from '../agent-protocol/ndjson.js'
import { SnapferryError } from '../errors/snapferry-error.js'
import { FLAG_END, FRAME_HEADER_BYTES } from './segment-frame.js'

export interface FrameRelayOptions {
  /** A new connection to the receiving agent's stream (it answers `{"next":N}` first). */
  readonly openReceiver: () => Promise<Duplex>
  /** A new connection to the sending agent's stream, resending from segment `from`. */
  readonly openSender: (from: number) => Promise<Duplex>
  /** Settles when both agents have answered the transfer's requests (success or failure). */
  readonly settled: Promise<unknown>
  /** Resolves when both agents are reachable again after a break (reconnects with backoff). */
  readonly waitForLink: () => Promise<void>
  /** Called for each chunk of frame bytes before it is forwarded (rate limit); may wait. */
  readonly meter?: ((bytes: number) => Promise<void>) | undefined
  /** Raw (uncompressed) bytes of new segments seen, for progress. */
  readonly onRawProgress?: ((rawBytes: number) => void) | undefined
  /** Test knob: flip this byte of the first connection's frame stream. */
  readonly corruptWireByte?: number | undefined
  readonly label: string
  readonly signal?: AbortSignal | undefined
  readonly onResume?: ((attempt: number, from: number, why: string) => void) | undefined
  readonly maxResumes: number
}

export interface FrameRelayResult {
  readonly resumes: number
  readonly wireBytes: number
}

const SETTLED = Symbol('settled')
/** Longer than any line a receiver writes back (`{"nack":N,"reason":…}` included). */
const MAX_CONTROL_LINE = 64 << 10

export async function relayFrames(o: FrameRelayOptions): Promise<FrameRelayResult> {
  let done = false
  const settled: Promise<typeof SETTLED> = o.settled.then(
    () => SETTLED,
    () => SETTLED,
  )
  void settled.then(() => {
    done = true
  })
  const race = <T>(p: Promise<T>): Promise<T | typeof SETTLED> => {
    p.catch(() => {})
    return Promise.race([p, settled])
  }
  let resumes = 0
  let wireBytes = 0
  let rawSeen = 0
  let maxSeq = -1
  // The end frame's seq once forwarded, and whether the receiver acknowledged it: after that, a closing
  // connection is the stream finishing, however long the agents then take to answer (the destination
  // may still be applying what it buffered).
  let endSeq: number | undefined
  let endAcked = false
  let tamper = o.corruptWireByte
  for (;;) {
    if (done) break
    let why = ''
    let dst: Duplex | undefined
    let src: Duplex | undefined
    try {
      const d = await race(o.openReceiver())
      if (d === SETTLED) break
      dst = d
      const hello = await race(readHeaderLine(dst) as Promise<{ next?: number }>)
      if (hello === SETTLED) break
      const from = hello.next ?? 0
      const s = await race(o.openSender(from))
      if (s === SETTLED) break
      src = s
      const watcher = frameWatcher((seq, raw, end) => {
        if (end) endSeq = seq
        if (seq > maxSeq) {
          maxSeq = seq
          rawSeen += raw
          o.onRawProgress?.(rawSeen)
        }
      })
      const spliced = await race(
        splice(
          src,
          dst,
          async (chunk) => {
            if (tamper !== undefined) {
              if (tamper < chunk.length) {
                chunk[tamper] = (chunk[tamper] as number) ^ 0xff
                tamper = undefined
              } else tamper -= chunk.length
            }
            watcher(chunk)
            wireBytes += chunk.length
            await o.meter?.(chunk.length)
          },
          ackWatcher((next) => {
            if (endSeq !== undefined && next > endSeq) endAcked = true
          }),
        ),
      )
      if (spliced === SETTLED) break
      why = spliced
    } catch (e) {
      why = (e as Error).message
    } finally {
      src?.destroy()
      dst?.destroy()
    }
    if (done) break
    if (endAcked) {
      await settled
      break
    }
    // Give the ends a moment to report completion: a connection also closes when a stream finishes.
    const finished = await race(new Promise((r) => setTimeout(r, 200)))
    if (finished === SETTLED || done) break
    if (o.signal?.aborted) throw o.signal.reason
    if (++resumes > o.maxResumes)
      throw new SnapferryError(
        'LINK_LOST',
        `the transfer of ${o.label} broke ${resumes} times (last: ${why}); giving up for this round`,
        {
          hint: 'check the link between the controller and the agents; the next round resumes',
          transient: true,
        },
      )
    o.onResume?.(resumes, maxSeq + 1, why)
    const back = await race(o.waitForLink())
    if (back === SETTLED) break
  }
  return { resumes, wireBytes }
}

/**
 * Pipe `src` into `dst` (with `onChunk` before each write, honouring backpressure) and `dst` back into
 * `src` (acks). Resolves with a reason when either connection closes or fails.
 */
function splice(
  src: Duplex,
  dst: Duplex,
  onChunk: (b: Buffer) => Promise<void>,
  onBack: (b: Buffer) => void,
): Promise<string> {
  return new Promise((resolve) => {
    let finished = false
    const finish = (why: string) => {
      if (finished) return
      finished = true
      resolve(why)
    }
    let busy = Promise.resolve()
    src.on('data', (chunk: Buffer) => {
      src.pause()
      busy = busy
        .then(() => onChunk(chunk))
        .then(
          () => {
            if (dst.write(chunk)) src.resume()
            else dst.once('drain', () => src.resume())
          },
          (e: Error) => finish(`metering failed: ${e.message}`),
        )
    })
    dst.on('data', (line: Buffer) => {
      onBack(line)
      if (!src.write(line)) {
        dst.pause()
        src.once('drain', () => dst.resume())
      }
    })
    for (const [side, s] of [
      ['sender', src],
      ['receiver', dst],
    ] as const) {
      s.on('error', (e) => finish(`${side} connection failed: ${e.message}`))
      s.on('close', () => finish(`${side} connection closed`))
      s.on('end', () => finish(`${side} connection ended`))
    }
    // readHeaderLine paused the receiver's connection explicitly: 'data' listeners alone do not resume it.
    dst.resume()
    src.resume()
  })
}

/**
 * Follows the receiver's control lines (`{"ack":N}`, …) in its byte stream and reports each ack. Only
 * watches: the sender reads the same lines (with its own checks and line cap) and fails on bad ones;
 * an unfinished line longer than any control line is dropped, so a bad peer cannot grow it.
 */
export function ackWatcher(onAck: (next: number) => void): (chunk: Buffer) => void {
  let partial = ''
  return (chunk) => {
    const lines = (partial + chunk.toString('utf8')).split('\n')
    partial = lines.pop() ?? ''
    if (partial.length > MAX_CONTROL_LINE) partial = ''
    for (const line of lines) {
      try {
        const m = JSON.parse(line) as { ack?: unknown }
        if (typeof m.ack === 'number') onAck(m.ack)
      } catch {
        // Not ours to judge: the sender parses these lines and fails on a bad one.
      }
    }
  }
}

/** Follows frame boundaries in a byte stream (starting at a boundary) and reports each frame's header. */
export function frameWatcher(
  onFrame: (seq: number, rawLen: number, end: boolean) => void,
): (chunk: Buffer) => void {
  let head = Buffer.alloc(0)
  let skip = 0
  return (chunk) => {
    let at = 0
    while (at < chunk.length) {
      if (skip > 0) {
        const k = Math.min(skip, chunk.length - at)
        skip -= k
        at += k
        continue
      }
      const need = FRAME_HEADER_BYTES - head.length
      const k = Math.min(need, chunk.length - at)
      head = Buffer.concat([head, chunk.subarray(at, at + k)])
      at += k
      if (head.length === FRAME_HEADER_BYTES) {
        onFrame(head.readUInt32LE(8), head.readUInt32LE(12), ((head[6] as number) & FLAG_END) !== 0)
        skip = head.readUInt32LE(16)
        head = Buffer.alloc(0)
      }
    }
  }
}
