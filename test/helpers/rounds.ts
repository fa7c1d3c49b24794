/** Synthetic measured rounds on a fake clock, for predictor and policy tests. */
import type { PipelineRound, VolumeRoundStats } from '../../src/convergence/round-stats.js'

export interface FakeWorkload {
  /** Bytes the workload dirties per second. */
  readonly dirtyRate: number
  /** Link bytes per second. */
  readonly link: number
  readonly volumeSize: number
  /** Scan rate (bytes/s) when the driver scans; 0: no scan (rbd fast-diff). */
  readonly scanRate: number
  readonly snapshotMs: number
  readonly overheadMs: number
  /**
   * Extents per second the source and destination handle in all (OSD ops), shared with the workload's
   * own writes while it runs; absent: extents cost nothing beyond their bytes.
   */
  readonly extentCapacity?: number
  /** Size of the workload's writes (default 4 KiB). */
  readonly extentBytes?: number
  /**
   * Time each round waits before its first bytes reach the destination (source snapshot open, export
   * start), reported like the rbd apply does (applyPhasesMs['first bytes']); part of the transfer.
   */
  readonly startMs?: number
}

/** How long moving `bytes` in `extents` takes while the workload writes (or, `stopped`, after it stopped). */
function sendTime(w: FakeWorkload, bytes: number, extents: number, stopped: boolean): number {
  const byLink = (bytes / w.link) * 1000
  if (w.extentCapacity === undefined) return byLink
  const workload = stopped ? 0 : w.dirtyRate / (w.extentBytes ?? 4096)
  return Math.max(byLink, (extents / (w.extentCapacity - workload)) * 1000)
}

/** Simulate `n` rounds: each ships what was dirtied during the previous one. Deterministic. */
export function simulateRounds(w: FakeWorkload, n: number, baseBytes: number): PipelineRound[] {
  const rounds: PipelineRound[] = []
  let clock = 1_000_000
  let prevStart: number | null = null
  let prevSnapAt = 0
  for (let r = 0; r < n; r++) {
    const startedAt = clock
    const intervalMs = prevStart === null ? null : startedAt - prevSnapAt
    const changed = r === 0 ? baseBytes : (w.dirtyRate * (intervalMs as number)) / 1000
    const scanMs = w.scanRate > 0 ? (w.volumeSize / w.scanRate) * 1000 : 0
    // The base is mostly whole objects; deltas are the workload's own small writes.
    const extents = r === 0 ? Math.ceil(changed / (4 << 20)) : Math.ceil(changed / (w.extentBytes ?? 4096))
    const sendMs = sendTime(w, changed, extents, false)
    const transferMs = Math.max(scanMs, sendMs) + w.overheadMs + (w.startMs ?? 0)
    const totalMs = w.snapshotMs + transferMs
    const v: VolumeRoundStats = {
      volume: 'v',
      round: r,
      fromSnap: r === 0 ? null : `snapferry-${r - 1}`,
      toSnap: `snapferry-${r}`,
      startedAt,
      intervalMs,
      snapshotMs: w.snapshotMs,
      exportMs: Math.max(scanMs, sendMs),
      importMs: transferMs,
      transferMs,
      totalMs,
      scannedBytes: w.scanRate > 0 ? w.volumeSize : 0,
      streamBytes: changed + 40,
      dataBytes: changed,
      zeroBytes: 0,
      extents,
      volumeSize: w.volumeSize,
      repairedExtents: 0,
      ...(w.startMs !== undefined ? { applyPhasesMs: { 'first bytes': w.startMs } } : {}),
    }
    rounds.push({ round: r, volumes: [v], startedAt, totalMs })
    prevStart = startedAt
    prevSnapAt = startedAt
    clock += totalMs
  }
  return rounds
}

/** The true cutover window after `rounds`: the workload stops right after the last round (no hooks). */
export function simulateCutover(w: FakeWorkload, rounds: readonly PipelineRound[]): number {
  const last = rounds[rounds.length - 1]?.volumes[0] as VolumeRoundStats
  // Writes made while the last snapshot was being taken are in it; the rest of that round's are not.
  const finalBytes = (w.dirtyRate * (last.totalMs - last.snapshotMs)) / 1000
  const scanMs = w.scanRate > 0 ? (w.volumeSize / w.scanRate) * 1000 : 0
  const finalExtents = Math.ceil(finalBytes / (w.extentBytes ?? 4096))
  return (
    w.snapshotMs +
    Math.max(scanMs, sendTime(w, finalBytes, finalExtents, true)) +
    w.overheadMs +
    (w.startMs ?? 0)
  )
}
