/**
 * Move one delta: source.exportDiff → (rate limit, progress) → destination.importDiff, with
 * backpressure end to end, and a check that the destination received exactly the bytes sent.
 */
import { PassThrough, Transform } from 'node:stream'
import type {
  ExportRequest,
  ExportResult,
  ImportRequest,
  ImportResult,
  VolumeDriver,
} from '../drivers/volume-driver.js'
import { SnapferryError } from '../errors/snapferry-error.js'
import type { RateLimiter } from './rate-limiter.js'

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
}

export interface RelayResult {
  readonly exported: ExportResult & Partial<{ streamSha256: string; streamBytes: number }>
  readonly imported: ImportResult & Partial<{ streamSha256: string; streamBytes: number }>
  readonly transferMs: number
}

const BUFFER_BYTES = 1 << 20

export async function relayDelta(o: RelayOptions): Promise<RelayResult> {
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
  exp.catch((e) => meter.destroy(e))
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
  if (sent.streamSha256 && got.streamSha256 && sent.streamSha256 !== got.streamSha256) {
    throw new SnapferryError(
      'TRANSFER_INTEGRITY',
      `the delta for ${o.label} arrived different from what was sent (sha256 ${got.streamSha256.slice(0, 16)}… ≠ ${sent.streamSha256.slice(0, 16)}…)`,
      {
        hint: 'the round is not counted; run again and the destination will be repaired',
        transient: true,
      },
    )
  }
  return { exported: sent, imported: got, transferMs: performance.now() - t0 }
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
