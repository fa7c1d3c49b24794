/**
 * The downtime predictor: from measured rounds, estimate the final cutover window — the time from the
 * first `before` hook until the last `after` hook ends. Pure: numbers in, numbers out (docs/CONVERGENCE.md).
 *
 * window = before hooks
 *        + final round: snapshot + max(scan, final delta ÷ link rate, final extents ÷ extent capacity)
 *                       + fixed per-round overhead
 *        + verification (full: read both volumes; none: 0)
 *        + after hooks
 * final delta = dirty rate × (time from the last snapshot until the workload stops)
 * extent capacity = extents a round drained per second + extents the workload dirtied per second: both
 *   compete for the same source (OSD, disk); in the final round the workload has stopped.
 */

import {
  bestRate,
  dirtyRate,
  drainRate,
  extentCapacity,
  fixedOverhead,
  latestExtentBytes,
  linkRate,
  median,
} from './round-rates.js'
import type { PipelineRound, VolumeRoundStats } from './round-stats.js'

export { dirtyRate, extentCapacity, linkRate, median } from './round-rates.js'

export interface PredictorInput {
  readonly rounds: readonly PipelineRound[]
  /** Configured bandwidth cap (bytes/s; Infinity when unlimited). */
  readonly bandwidthLimit: number
  /** Verification per volume (`records` costs next to nothing; `full` reads both volumes). */
  readonly verify: Readonly<Record<string, 'full' | 'records' | 'none'>> | 'full' | 'records' | 'none'
  /** Measured durations of the cutover hooks, when a previous attempt or dry run measured them. */
  readonly beforeHooksMs: number | undefined
  readonly afterHooksMs: number | undefined
  /** Volumes that move at once. */
  readonly concurrency: number
  /** The pause between the end of the last round and the cutover (roundInterval, or 0). */
  readonly pauseBeforeCutoverMs: number
  /**
   * Bytes already changed since each volume's last snapshot, measured just now by drivers that can
   * tell cheaply (rbd: `rbd diff --from-snap`). Replaces the modelled part of the final delta.
   */
  readonly pendingBytes?: Readonly<Record<string, number>> | undefined
  /** How long ago each volume's pendingBytes was measured: the workload's writes since are added. */
  readonly pendingAgeMs?: Readonly<Record<string, number>> | undefined
  /**
   * How long after the volume's last snapshot each pendingBytes was measured. pending ÷ this is the rate
   * at which this interval changed bytes; the writes since the measurement are counted at no more than
   * it (the dirty rate of the first rounds of a thin image counts whole objects at their first touch).
   */
  readonly pendingSinceSnapshotMs?: Readonly<Record<string, number>> | undefined
}

/** What drivers measured as already changed since each volume's last snapshot (PredictorInput). */
export interface PendingMeasurement {
  readonly bytes: Readonly<Record<string, number>>
  /** How long before the prediction each was measured. */
  readonly ageMs: Readonly<Record<string, number>>
  /** How long after the volume's last snapshot each was measured. */
  readonly sinceSnapshotMs: Readonly<Record<string, number>>
  /** Volumes measured while their destination still finished the round (not after it). */
  readonly early: readonly string[]
}

export interface VolumePrediction {
  readonly volume: string
  readonly dirtyBytesPerSecond: number
  readonly finalDeltaBytes: number
  readonly scanMs: number
  /** Final delta ÷ link rate, or its extents ÷ extent capacity when that is longer. */
  readonly sendMs: number
  /** Extents per second the source and destination handle with the workload stopped (Infinity: unknown). */
  readonly extentCapacity: number
  /** Changed bytes per second the recent delta rounds moved while the workload ran. */
  readonly drainBytesPerSecond: number
  readonly fixedMs: number
  readonly snapshotMs: number
  readonly finalRoundMs: number
  readonly verifyMs: number
}

export interface Prediction {
  readonly windowMs: number
  readonly beforeHooksMs: number
  readonly finalRoundMs: number
  readonly verifyMs: number
  readonly afterHooksMs: number
  readonly linkBytesPerSecond: number
  /** Changed bytes per second the recent delta rounds moved while the workload ran (all volumes). */
  readonly drainBytesPerSecond: number
  readonly finalDeltaBytes: number
  readonly dirtyBytesPerSecond: number
  readonly volumes: readonly VolumePrediction[]
  /** What the estimate could not measure yet ("hooks not measured"). */
  readonly caveats: readonly string[]
}

/** Scan rate when no round measured one: a conservative sequential-read figure. */
const DEFAULT_SCAN_RATE = 400e6
/** Checksumming reads a volume about as fast as a scan; both sides read in parallel. */

export function predictWindow(input: PredictorInput): Prediction {
  const caveats: string[] = []
  const names = [...new Set(input.rounds.flatMap((r) => r.volumes.map((v) => v.volume)))]
  const deltaRounds = input.rounds.filter((r) => r.volumes.some((v) => v.fromSnap !== null))
  if (deltaRounds.length === 0) caveats.push('no delta round yet: dirty rate unknown, assumed 0')
  const link = linkRate(input.rounds, input.bandwidthLimit)
  const volumes = names.map((name) => predictVolume(name, input, link))
  const beforeHooksMs = input.beforeHooksMs ?? 0
  const afterHooksMs = input.afterHooksMs ?? 0
  if (input.beforeHooksMs === undefined || input.afterHooksMs === undefined)
    caveats.push('hook durations not measured yet (counted as 0)')
  // Volumes share the link: the final round lasts at least all final bytes ÷ link rate.
  const totalFinal = volumes.reduce((n, v) => n + v.finalDeltaBytes, 0)
  const waves = Math.ceil(volumes.length / Math.max(1, input.concurrency))
  const slowest = Math.max(0, ...volumes.map((v) => v.finalRoundMs))
  const finalRoundMs = Math.max(slowest * waves, Number.isFinite(link) ? (totalFinal / link) * 1000 : 0)
  const verifyMs = Math.max(0, ...volumes.map((v) => v.verifyMs)) * waves
  return {
    windowMs: beforeHooksMs + finalRoundMs + verifyMs + afterHooksMs,
    beforeHooksMs,
    finalRoundMs,
    verifyMs,
    afterHooksMs,
    linkBytesPerSecond: link,
    drainBytesPerSecond: volumes.reduce((n, v) => n + v.drainBytesPerSecond, 0),
    finalDeltaBytes: totalFinal,
    dirtyBytesPerSecond: volumes.reduce((n, v) => n + v.dirtyBytesPerSecond, 0),
    volumes,
    caveats,
  }
}

function predictVolume(volume: string, input: PredictorInput, link: number): VolumePrediction {
  const history = input.rounds.flatMap((r) => r.volumes.filter((v) => v.volume === volume))
  const last = history[history.length - 1] as VolumeRoundStats
  const dirty = dirtyRate(history)
  const scanRate = bestRate(history.map((h) => [h.scannedBytes, h.exportMs])) ?? DEFAULT_SCAN_RATE
  const scanMs = last.scannedBytes > 0 ? (last.volumeSize / scanRate) * 1000 : 0
  // Changes since the last snapshot: made during the rest of the last round, the pause and the before
  // hooks — or, where the driver measured what is pending now, that plus what the hooks' time adds.
  const pending = input.pendingBytes?.[volume]
  const hooksAndPauseMs = input.pauseBeforeCutoverMs + (input.beforeHooksMs ?? 0)
  const pendingAgeMs = input.pendingAgeMs?.[volume] ?? 0
  const sinceSnapshotMs = input.pendingSinceSnapshotMs?.[volume] ?? 0
  const sinceRate =
    pending !== undefined && sinceSnapshotMs > 0 ? Math.min(dirty, pending / (sinceSnapshotMs / 1000)) : dirty
  const finalDeltaBytes =
    pending !== undefined
      ? pending + dirty * (hooksAndPauseMs / 1000) + sinceRate * (pendingAgeMs / 1000)
      : dirty * ((Math.max(0, last.totalMs - last.snapshotMs) + hooksAndPauseMs) / 1000)
  const capacity = extentCapacity(history, link)
  const extentBytes = latestExtentBytes(history)
  const byLinkMs = Number.isFinite(link) ? (finalDeltaBytes / link) * 1000 : 0
  const byExtentsMs = Number.isFinite(capacity) ? (finalDeltaBytes / extentBytes / capacity) * 1000 : 0
  const sendMs = Math.max(byLinkMs, byExtentsMs)
  const fixedMs = fixedOverhead(history, link, scanRate, capacity)
  const snapshotMs = median(history.map((h) => h.snapshotMs))
  const finalRoundMs = snapshotMs + Math.max(scanMs, sendMs) + fixedMs
  const level = typeof input.verify === 'string' ? input.verify : (input.verify[volume] ?? 'full')
  const verifyMs = level === 'full' ? (last.volumeSize / scanRate) * 1000 : 0
  return {
    volume,
    dirtyBytesPerSecond: dirty,
    finalDeltaBytes,
    scanMs,
    sendMs,
    extentCapacity: capacity,
    drainBytesPerSecond: drainRate(history),
    fixedMs,
    snapshotMs,
    finalRoundMs,
    verifyMs,
  }
}
