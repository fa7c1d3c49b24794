/** One delta round of one volume: snapshot the source, ship the delta since `from`, apply, measure. */
import type { VolumeRoundStats } from '../convergence/round-stats.js'
import type { Extent } from '../drivers/volume-driver.js'
import { asSnapferryError } from '../errors/snapferry-error.js'
import type { Journal } from '../state/journal.js'
import type { CompressionSetting } from '../transfer/compression-policy.js'
import type { RateLimiter } from './rate-limiter.js'
import { relayDelta } from './relay-delta.js'
import type { VolumePair } from './volume-pair.js'

export interface RoundInput {
  readonly pair: VolumePair
  readonly round: number
  readonly from: string | null
  readonly to: string
  /** When the previous round's snapshot was taken (ms since epoch), for the dirty rate. */
  readonly previousSnapshotAt: number | null
  /** Destination extents to re-send (repair of an interrupted apply). */
  readonly repair: readonly Extent[] | undefined
  /** A base may replace destination data (snapferry's own unfinished base, or --overwrite). */
  readonly overwrite: boolean
  readonly journal: Journal
  readonly limiter: RateLimiter | undefined
  readonly compression?: CompressionSetting | undefined
  readonly onProgress?: ((volume: string, bytes: number) => void) | undefined
  readonly onResume?: ((attempt: number, fromSegment: number, why: string) => void) | undefined
  /** The source snapshot `to` exists (journaled); the delta is about to start. */
  readonly onSnapshot?: (() => void) | undefined
  /** The source sent the whole delta to `to` (relayDelta's onExported); the destination may still write. */
  readonly onExported?: (() => void) | undefined
  readonly signal: AbortSignal | undefined
}

export async function runRound(i: RoundInput): Promise<VolumeRoundStats> {
  const { pair, round, journal } = i
  const startedAt = Date.now()
  const t0 = performance.now()
  await journal.append({ type: 'snapshot-creating', volume: pair.name, round, name: i.to })
  await pair.source.createSnapshot(i.to, i.signal)
  const snapshotMs = performance.now() - t0
  await journal.append({ type: 'snapshot-created', volume: pair.name, round, name: i.to })
  i.onSnapshot?.()
  await journal.append({
    type: 'transfer-started',
    volume: pair.name,
    round,
    from: i.from,
    to: i.to,
    repairExtents: i.repair?.length ?? 0,
  })
  try {
    const r = await relayDelta({
      source: pair.source,
      destination: pair.destination,
      label: `volume ${pair.name}`,
      exportRequest: { fromSnap: i.from ?? undefined, toSnap: i.to, include: i.repair },
      importRequest: {
        fromSnap: i.from ?? undefined,
        toSnap: i.to,
        repair: (i.repair?.length ?? 0) > 0 || undefined,
        overwrite: i.overwrite || undefined,
      },
      limiter: i.limiter,
      compression: i.compression,
      onResume: i.onResume,
      onProgress: i.onProgress ? (b) => i.onProgress?.(pair.name, b) : undefined,
      onExported: i.onExported,
      signal: i.signal,
    })
    const stats: VolumeRoundStats = {
      volume: pair.name,
      round,
      fromSnap: i.from,
      toSnap: i.to,
      startedAt,
      intervalMs: i.previousSnapshotAt === null ? null : startedAt - i.previousSnapshotAt,
      snapshotMs,
      exportMs: r.exported.durationMs,
      importMs: r.imported.durationMs,
      transferMs: r.transferMs,
      totalMs: performance.now() - t0,
      scannedBytes: r.exported.scannedBytes,
      streamBytes: r.exported.streamBytes,
      dataBytes: r.exported.dataBytes,
      zeroBytes: r.exported.zeroBytes,
      extents: r.exported.extents,
      volumeSize: r.exported.size,
      repairedExtents: i.repair?.length ?? 0,
      ...(r.imported.applyMode ? { applyMode: r.imported.applyMode } : {}),
      ...(r.imported.phasesMs ? { applyPhasesMs: r.imported.phasesMs } : {}),
      ...(r.imported.waitsMs ? { applyWaitsMs: r.imported.waitsMs } : {}),
      ...(r.sendWaitsMs ? { sendWaitsMs: r.sendWaitsMs } : {}),
      ...(r.wireBytes !== undefined ? { wireBytes: r.wireBytes, resumes: r.resumes ?? 0 } : {}),
    }
    await journal.append({ type: 'round-completed', stats })
    return stats
  } catch (e) {
    const err = asSnapferryError(e)
    await journal.append({ type: 'round-failed', volume: pair.name, round, error: err.toJSON() })
    throw err
  }
}
