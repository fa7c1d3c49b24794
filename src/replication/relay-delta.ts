/**
 * Move one delta: source.exportDiff → (rate limit, progress) → destination.importDiff, with
 * backpressure end to end, and a check that the destination received exactly the bytes sent.
 */
import { PassThrough, Transform } from 'node:stream'
import { newStreamToken } from '../agent-protocol/agent-streams.js'
import { RemoteVolumeDriver } from '../agent-protocol/remote-volume-driver.js'
import type {
  ExportRequest,
  ExportResult,
  ImportRequest,
  ImportResult,
  VolumeDriver,
} from '../drivers/volume-driver.js'
import { SnapferryError } from '../errors/snapferry-error.js'
import type { CompressionSetting } from '../transfer/compression-policy.js'
import { relayFrames } from '../transfer/frame-relay.js'
import type { RateLimiter } from './rate-limiter.js'

/**
 * Test knob: flip the byte at this offset of the first frame stream a relay forwards, to prove that a
 * damaged segment is refused and sent again. Does nothing unless set.
 */
export const CORRUPT_WIRE_BYTE_ENV = 'SNAPFERRY_TEST_CORRUPT_WIRE_BYTE'
/** Resumes of one transfer before the round counts as failed (the engine then retries the round). */
const MAX_RESUMES = 20

export interface RelayOptions {
  readonly source: VolumeDriver
  readonly destination: VolumeDriver
  readonly exportRequest: ExportRequest
  readonly importRequest: ImportRequest
  readonly limiter?: RateLimiter | undefined
  /** Called with the bytes moved so far (throttled by the caller's display). */
  readonly onProgress?: ((bytes: number) => void) | undefined
  readonly signal?: AbortSignal | undefined
  /** For messages: "volume root". */
  readonly label: string
  /** zstd level on the source agent, or `auto` (agents only). */
  readonly compression?: CompressionSetting | undefined
  readonly onResume?: ((attempt: number, fromSegment: number, why: string) => void) | undefined
  /**
   * The source has sent the whole delta and the destination holds it (between agents: every segment
   * acknowledged); the destination may still be writing it. Called once, not on failure.
   */
  readonly onExported?: (() => void) | undefined
}

export interface RelayResult {
  readonly exported: ExportResult & Partial<{ streamDigest: string; streamBytes: number }>
  readonly imported: ImportResult & Partial<{ streamDigest: string; streamBytes: number }>
  readonly transferMs: number
  /** Frame bytes between the agents (agents only). */
  readonly wireBytes?: number
  readonly resumes?: number
  /** The sending agent's waits, ms (agents only; SenderStats.blockedMs and idleMs). */
  readonly sendWaitsMs?: { readonly forLink: number; readonly forSource: number }
}

const BUFFER_BYTES = 1 << 20

export async function relayDelta(o: RelayOptions): Promise<RelayResult> {
  if (o.source instanceof RemoteVolumeDriver && o.destination instanceof RemoteVolumeDriver)
    return relayBetweenAgents(o, o.source, o.destination)
  const t0 = performance.now()
  const pipe = new PassThrough({ highWaterMark: BUFFER_BYTES })
  let moved = 0
  const meter = new Transform({
    highWaterMark: BUFFER_BYTES,
    transform(chunk: Buffer, _e, cb) {
      moved += chunk.length
      o.onProgress?.(moved)
      if (!o.limiter) return cb(null, chunk)
      o.limiter.take(chunk.length, o.signal).then(() => cb(null, chunk), cb)
    },
  })
  pipe.pipe(meter)
  pipe.on('error', (e) => meter.destroy(e))
  const exp = o.source.exportDiff({ ...o.exportRequest, signal: o.signal }, pipe)
  exp.then(
    () => o.onExported?.(),
    (e) => meter.destroy(e),
  )
  const imp = o.destination.importDiff({ ...o.importRequest, signal: o.signal }, meter)
  imp.catch(() => pipe.destroy())
  const [e, i] = await Promise.allSettled([exp, imp])
  if (e.status === 'rejected' || i.status === 'rejected') {
    throw primaryError(
      e.status === 'rejected' ? e.reason : undefined,
      i.status === 'rejected' ? i.reason : undefined,
    )
  }
  const sent = e.value as RelayResult['exported']
  const got = i.value as RelayResult['imported']
  checkDigests(o.label, sent, got)
  return { exported: sent, imported: got, transferMs: performance.now() - t0 }
}

/**
 * Both ends are agents: frames go from the source agent through the controller to the destination
 * agent untouched (compressed, checked per segment by the destination), resuming after a dropped link.
 */
async function relayBetweenAgents(
  o: RelayOptions,
  source: RemoteVolumeDriver,
  destination: RemoteVolumeDriver,
): Promise<RelayResult> {
  const t0 = performance.now()
  const ac = new AbortController()
  const onAbort = () => ac.abort(o.signal?.reason)
  o.signal?.addEventListener('abort', onAbort, { once: true })
  if (o.signal?.aborted) onAbort()
  const srcToken = newStreamToken()
  const dstToken = newStreamToken()
  const { signal: _s1, ...exportRequest } = o.exportRequest
  const { signal: _s2, ...importRequest } = o.importRequest
  const exp = source.startExport(exportRequest, srcToken, o.compression ?? 'auto', ac.signal)
  const imp = destination.startImport(importRequest, dstToken, ac.signal)
  // One end failing ends the other: a destination that refuses must not leave the source waiting.
  exp.then(
    () => o.onExported?.(),
    (e) => ac.abort(e),
  )
  imp.catch((e) => ac.abort(e))
  const corrupt = process.env[CORRUPT_WIRE_BYTE_ENV]
  const relay = relayFrames({
    openReceiver: () => destination.openStream({ token: dstToken }),
    openSender: (from) => source.openStream({ token: srcToken, from }),
    settled: Promise.allSettled([exp, imp]),
    waitForLink: async () => {
      await Promise.all([source.whenConnected(), destination.whenConnected()])
    },
    meter: o.limiter ? (n) => o.limiter?.take(n, ac.signal) as Promise<void> : undefined,
    onRawProgress: o.onProgress,
    corruptWireByte: corrupt ? Number(corrupt) : undefined,
    label: o.label,
    signal: ac.signal,
    onResume: o.onResume,
    maxResumes: MAX_RESUMES,
  })
  relay.catch((e) => ac.abort(e))
  try {
    const [e, i, r] = await Promise.allSettled([exp, imp, relay])
    if (e.status === 'rejected' || i.status === 'rejected') {
      throw primaryError(
        e.status === 'rejected' ? e.reason : r.status === 'rejected' ? r.reason : undefined,
        i.status === 'rejected' ? i.reason : undefined,
      )
    }
    if (r.status === 'rejected') throw r.reason
    checkDigests(o.label, e.value, i.value)
    return {
      exported: e.value,
      imported: i.value,
      transferMs: performance.now() - t0,
      wireBytes: e.value.transfer?.wireBytes ?? r.value.wireBytes,
      resumes: r.value.resumes,
      ...(typeof e.value.transfer?.blockedMs === 'number'
        ? {
            sendWaitsMs: {
              forLink: Math.round(e.value.transfer.blockedMs),
              forSource: Math.round(e.value.transfer.idleMs ?? 0),
            },
          }
        : {}),
    }
  } finally {
    o.signal?.removeEventListener('abort', onAbort)
  }
}

function checkDigests(
  label: string,
  sent: Partial<{ streamDigest: string }>,
  got: Partial<{ streamDigest: string }>,
): void {
  const o = { label }
  if (sent.streamDigest && got.streamDigest && sent.streamDigest !== got.streamDigest) {
    throw new SnapferryError(
      'TRANSFER_INTEGRITY',
      `the delta for ${o.label} arrived different from what was sent (segment digest ${got.streamDigest.slice(0, 16)}… ≠ ${sent.streamDigest.slice(0, 16)}…)`,
      {
        hint: 'the round is not counted; run again and the destination will be repaired',
        transient: true,
      },
    )
  }
}

/**
 * When both ends fail, one failure usually caused the other: a source that cannot export makes the
 * destination see a truncated stream, a destination that refuses makes the source see a broken pipe.
 */
export function primaryError(exportErr: unknown, importErr: unknown): unknown {
  if (exportErr === undefined) return importErr
  if (importErr === undefined) return exportErr
  const consequential = ['DIFF_TRUNCATED', 'ABORTED', 'TRANSFER_ABORTED']
  const ic = (importErr as SnapferryError).code
  return ic === undefined ||
    consequential.includes(ic) ||
    (importErr as NodeJS.ErrnoException).code === 'ERR_STREAM_PREMATURE_CLOSE'
    ? exportErr
    : importErr
}
