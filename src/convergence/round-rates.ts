/**
 * What the predictor learns from a volume's measured rounds: the workload's dirty rate, the link rate, the
 * extents a path handles per second, a round's fixed overhead. Pure functions of the round history
 * (predictor.ts puts them together; docs/CONVERGENCE.md explains each).
 */
import type { PipelineRound, VolumeRoundStats } from './round-stats.js'
import { changedBytes } from './round-stats.js'

/** Bytes changed per second, from the most recent delta rounds (weighted to the newest). */
export function dirtyRate(history: readonly VolumeRoundStats[]): number {
  const deltas = history
    .filter((h) => h.fromSnap !== null && h.intervalMs !== null && h.intervalMs > 0)
    .slice(-3)
  if (deltas.length === 0) return 0
  let num = 0
  let den = 0
  deltas.forEach((h, i) => {
    const w = i + 1
    num += w * (changedBytes(h) / ((h.intervalMs as number) / 1000))
    den += w
  })
  return num / den
}

/** Delta rounds with at least this many extents say something about the per-extent cost. */
const MIN_EXTENTS = 1024

/**
 * Extents per second the volume's path handles when nothing else competes. Small extents cost per
 * extent, not per byte (an OSD op each on both sides), and during warm rounds the workload's own writes
 * take their share of the same OSDs; the final round runs after the workload stopped. So each recent
 * extent-bound delta round (one that moved its changed bytes at under half the link rate) gives
 * capacity = extents it drained per second of transfer + extents the workload dirtied per second
 * (extents ÷ interval); the median of the last three. Infinity when no round was extent-bound.
 * The transfer's start — until the first bytes reached the destination (source snapshot opened, export
 * started: 140–440 ms on the downtime bench) — is not extent time: counted in, it would make a large
 * round look slow per extent and a small final round look fast. It stays in the fixed overhead.
 */
export function extentCapacity(history: readonly VolumeRoundStats[], link: number): number {
  const caps = history
    .filter(
      (h) =>
        h.fromSnap !== null &&
        h.extents >= MIN_EXTENTS &&
        h.transferMs > startMs(h) &&
        (h.intervalMs ?? 0) > 0 &&
        changedBytes(h) / (h.transferMs / 1000) < link / 2,
    )
    .slice(-3)
    .map(
      (h) => h.extents / ((h.transferMs - startMs(h)) / 1000) + h.extents / ((h.intervalMs as number) / 1000),
    )
  return caps.length > 0 ? median(caps) : Number.POSITIVE_INFINITY
}

/** When the first bytes reached the destination, ms into the transfer (0 where the driver does not say). */
export function startMs(h: VolumeRoundStats): number {
  return h.applyPhasesMs?.['first bytes'] ?? 0
}

/**
 * The destination's apply after the whole delta was written to it until the apply ended (its last step),
 * where the driver reports both and applied while the delta streamed in; undefined elsewhere. A staged
 * apply (rbd `staged-file`) writes the delta to a file first and imports it after: its finish is the
 * extents' own time, which the extent capacity already counts.
 */
export function applyFinishMs(h: VolumeRoundStats): number | undefined {
  const phases = h.applyPhasesMs
  const written = phases?.['delta written']
  if (phases === undefined || written === undefined || h.applyMode === 'staged-file') return undefined
  return Math.max(0, Math.max(...Object.values(phases)) - written)
}

/**
 * Changed bytes per extent in the latest delta round that shipped any (4 KiB when none did). The latest,
 * not an average: early deltas carry large extents (Pacific reports a whole object's tail on its first
 * write past the end), later ones only the workload's own writes.
 */
export function latestExtentBytes(history: readonly VolumeRoundStats[]): number {
  const last = history.filter((x) => x.fromSnap !== null && x.extents > 0 && changedBytes(x) > 0).pop()
  return last ? changedBytes(last) / last.extents : 4096
}

/** Changed bytes per second the last three delta rounds moved (while the workload ran). */
export function drainRate(history: readonly VolumeRoundStats[]): number {
  const deltas = history.filter((h) => h.fromSnap !== null && h.transferMs > 0).slice(-3)
  const bytes = deltas.reduce((n, h) => n + changedBytes(h), 0)
  const ms = deltas.reduce((n, h) => n + h.transferMs, 0)
  return ms > 0 ? bytes / (ms / 1000) : 0
}

/** The link rate: the best throughput a round achieved (a lower bound), capped by the configured limit. */
export function linkRate(rounds: readonly PipelineRound[], limit: number): number {
  let best = 0
  for (const r of rounds) {
    const bytes = r.volumes.reduce((n, v) => n + v.streamBytes, 0)
    const ms = Math.max(...r.volumes.map((v) => v.transferMs), 1)
    // Only rounds that moved enough bytes say something about the link.
    if (bytes >= 4 << 20) best = Math.max(best, bytes / (ms / 1000))
  }
  if (best === 0) return limit
  return Math.min(best, limit)
}

export function bestRate(pairs: readonly (readonly [number, number])[]): number | undefined {
  let best: number | undefined
  for (const [bytes, ms] of pairs) if (bytes > 0 && ms > 0) best = Math.max(best ?? 0, bytes / (ms / 1000))
  return best
}

/**
 * What a round costs beyond snapshot, scan and bytes: process and protocol overhead (median per round).
 * Where the destination reports its apply's steps, that is what they show outside the delta's own time:
 * the start (until the first bytes reached it), its finish after the whole delta was written (rbd: the
 * end snapshot, and the writes librbd's cache still held), and the controller's time around the
 * transfer. Elsewhere it is the residual: the round's time less the bytes' and extents' share at the
 * capacity the workload left. The residual counts a round's extents slowed by the workload as overhead:
 * beside a live writer a small warm round exported ~720 extents/s where that model expected ~1,750, so
 * the final round, with the writer stopped, was predicted at 1.14 s for 0.89 s measured
 * (docs/BENCHMARKS.md, "Fixed cost from the apply's steps").
 * Never less than the round's start, which every round pays, the final one too: a round that drained
 * faster than the median capacity would otherwise leave a residual of 0 (the 1 GiB, 2 MiB/s, 100 Mbit
 * bench run predicted 0.97 s for 1.38 s with none counted).
 */
export function fixedOverhead(
  history: readonly VolumeRoundStats[],
  link: number,
  scanRate: number,
  capacity: number,
): number {
  const residuals = history
    .filter((h) => h.fromSnap !== null)
    .map((h) => {
      const scan = (h.scannedBytes / scanRate) * 1000
      const byLink = Number.isFinite(link) ? (h.streamBytes / link) * 1000 : 0
      // The extents' share of the round, at the capacity left over by the workload at the time.
      const left = capacity - (h.intervalMs ? h.extents / (h.intervalMs / 1000) : 0)
      const byExtents = Number.isFinite(capacity) && left > 0 ? (h.extents / left) * 1000 : 0
      const residual = h.totalMs - h.snapshotMs - Math.max(scan, byLink, byExtents)
      const finish = applyFinishMs(h)
      if (finish === undefined) return Math.max(startMs(h), residual)
      const aroundTransfer = Math.max(0, h.totalMs - h.snapshotMs - h.transferMs)
      return startMs(h) + finish + aroundTransfer
    })
  return residuals.length > 0 ? median(residuals) : 50
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return 0
  const s = [...xs].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2
}
