/** One round across all volumes of the pipeline (concurrently, within the limit), then retention. */
import { formatBytes, formatDuration, formatRate } from '../config/units.js'
import type { PipelineRound, VolumeRoundStats } from '../convergence/round-stats.js'
import { snapshotName } from '../drivers/snapshot-names.js'
import { asSnapferryError } from '../errors/snapferry-error.js'
import { snapshotsToPrune } from '../replication/retention.js'
import { runRound } from '../replication/run-round.js'
import type { EngineContext } from './engine-context.js'
import { mapLimit } from './map-limit.js'
import { reconcileVolume, type VolumeState } from './reconcile.js'
import { pipelineRound } from './round-history.js'

const ATTEMPTS = 3

/** What the progress display can say about a round before it ends. */
export interface RoundOutlook {
  /** Bytes the round is expected to move (the predictor's final-delta estimate, or volume sizes for a base). */
  readonly expectedBytes?: number | undefined
  /** The cutover window predicted after the previous round. */
  readonly predictedWindowMs?: number | undefined
  /**
   * Prune old snapshots behind the round (true, the default), or once the round's snapshot exists
   * ('after-snapshot'). The convergence loop's warm rounds use the latter: retention then runs while the
   * round ships (the time between two snapshots is what the next delta grows with), it never delays a
   * cutover, and the round's snapshot does not wait behind removals (rbd: the image's lock owner, the
   * running VM, carries out both one after the other). The cutover's final round passes false: deleting
   * snapshots costs rbd calls that would sit inside the downtime window.
   */
  readonly prune?: boolean | 'after-snapshot' | undefined
}

/** What the caller hears of a round while it runs. */
export interface RoundHooks {
  /**
   * A volume's source sent its whole delta up to `snapshot`; its destination may still be writing. The
   * convergence loop measures what is already pending since `snapshot` here, beside the destination's
   * finish, instead of after the round.
   */
  readonly onExported?: ((s: VolumeState, snapshot: string) => void) | undefined
}

export async function runPipelineRound(
  ctx: EngineContext,
  states: readonly VolumeState[],
  outlook: RoundOutlook = {},
  hooks: RoundHooks = {},
): Promise<PipelineRound> {
  const moved = new Map<string, number>()
  const t0 = performance.now()
  const label = Math.max(...states.map((s) => s.nextRound))
  let shownAt = t0
  const show = () => {
    // A terminal needs a few updates a second, not one per chunk.
    if (performance.now() - shownAt < 250) return
    shownAt = performance.now()
    const bytes = [...moved.values()].reduce((a, b) => a + b, 0)
    const secs = (performance.now() - t0) / 1000
    const rate = bytes / Math.max(secs, 0.001)
    const left = outlook.expectedBytes !== undefined ? Math.max(0, outlook.expectedBytes - bytes) : undefined
    const eta =
      left !== undefined && rate > 0 && secs >= 0.5 ? `, ETA ${formatDuration((left / rate) * 1000)}` : ''
    const of = outlook.expectedBytes !== undefined ? ` of ~${formatBytes(outlook.expectedBytes)}` : ''
    const window =
      outlook.predictedWindowMs !== undefined
        ? `, predicted window ${formatDuration(outlook.predictedWindowMs)}`
        : ''
    ctx.reporter.status(
      `round ${label}: ${formatBytes(bytes)}${of} sent, ${formatRate(rate)}${eta}, ${secs.toFixed(1)} s${window}`,
    )
  }
  const stats = await mapLimit(states, ctx.cfg.concurrency, async (s) => {
    for (let attempt = 1; ; attempt++) {
      ctx.signal.throwIfAborted()
      try {
        const r = await roundOnce(
          ctx,
          s,
          (b) => {
            moved.set(s.pair.name, b)
            show()
          },
          {
            onExported: hooks.onExported,
            onSnapshot: outlook.prune === 'after-snapshot' ? () => schedulePrune(ctx, s) : undefined,
          },
        )
        ctx.log.info({ round: r }, `volume ${s.pair.name}: round ${r.round} done`)
        if (outlook.prune === true || outlook.prune === undefined) schedulePrune(ctx, s)
        return r
      } catch (e) {
        const err = asSnapferryError(e)
        ctx.log.warn({ volume: s.pair.name, attempt, err: err.toJSON() }, 'round failed')
        if (!err.transient || attempt >= ATTEMPTS || ctx.signal.aborted) throw err
        ctx.reporter.line(
          `volume ${s.pair.name}: round failed (${err.code}: ${err.message}); retrying (${attempt}/${ATTEMPTS - 1})`,
        )
        await new Promise((r) => setTimeout(r, 1000 * 2 ** (attempt - 1)))
        // Whatever the failed attempt left behind is cleaned up the same way a resume does it.
        Object.assign(s, await reconcileVolume(s.pair, ctx.history, ctx.journal, ctx.reconcile, ctx.signal))
      }
    }
  })
  return pipelineRound(label, stats)
}

async function roundOnce(
  ctx: EngineContext,
  s: VolumeState,
  onProgress: (bytes: number) => void,
  on: {
    onExported?: ((s: VolumeState, snapshot: string) => void) | undefined
    onSnapshot?: (() => void) | undefined
  },
): Promise<VolumeRoundStats> {
  const to = snapshotName(s.nextRound, new Date())
  const stats = await runRound({
    pair: s.pair,
    round: s.nextRound,
    from: s.last,
    to,
    previousSnapshotAt: s.lastSnapshotAt,
    repair: s.repair,
    overwrite: s.overwrite,
    journal: ctx.journal,
    limiter: ctx.limiter,
    compression: ctx.cfg.transport.compression === 'none' ? 0 : ctx.cfg.transport.compression,
    onProgress: (_v, b) => onProgress(b),
    onResume: (attempt, from, why) =>
      ctx.log.warn({ volume: s.pair.name, attempt, fromSegment: from, why }, 'transfer resumed'),
    onSnapshot: on.onSnapshot,
    onExported: on.onExported ? () => on.onExported?.(s, to) : undefined,
    signal: ctx.signal,
  })
  s.last = to
  s.lastSnapshotAt = stats.startedAt
  s.nextRound++
  s.repair = undefined
  s.overwrite = false
  return stats
}

/** Queue retention behind this volume's previous one; a failure is logged and retried after the next round. */
function schedulePrune(ctx: EngineContext, s: VolumeState): void {
  s.pruning = (s.pruning ?? Promise.resolve()).then(() =>
    pruneSnapshots(ctx, s).catch((e: unknown) =>
      ctx.log.warn(
        { volume: s.pair.name, err: asSnapferryError(e).toJSON() },
        'pruning old snapshots failed',
      ),
    ),
  )
}

/** Wait for retention still running behind the rounds (before a cutover, and before volumes close). */
export async function settlePruning(states: readonly VolumeState[]): Promise<void> {
  await Promise.all(states.map((s) => s.pruning))
}

/** Keep the newest `snapshots.keep` shared snapshots on both sides; never the next delta's base. */
/**
 * Every snapferry snapshot of a volume, on both sides, after a finished move of Cinder volumes: Cinder
 * refuses to delete a volume whose RBD image has snapshots it does not know.
 */
export async function removeAllSnapshots(ctx: EngineContext, s: VolumeState): Promise<number> {
  let removed = 0
  await Promise.all(
    (['source', 'destination'] as const).map(async (side) => {
      for (const snap of await s.pair[side].listSnapshots(ctx.signal)) {
        await ctx.journal.append({ type: 'snapshot-deleting', volume: s.pair.name, side, name: snap.name })
        await s.pair[side].deleteSnapshot(snap.name, ctx.signal)
        await ctx.journal.append({ type: 'snapshot-deleted', volume: s.pair.name, side, name: snap.name })
        removed++
      }
    }),
  )
  return removed
}

export async function pruneSnapshots(ctx: EngineContext, s: VolumeState): Promise<void> {
  const [src, dst] = await Promise.all([
    s.pair.source.listSnapshots(ctx.signal),
    s.pair.destination.listSnapshots(ctx.signal),
  ])
  const srcDone = new Set(src.filter((x) => x.complete).map((x) => x.name))
  const shared = dst.filter((d) => d.complete && srcDone.has(d.name))
  for (const name of snapshotsToPrune(shared, ctx.cfg.snapshots.keep, s.last)) {
    // Both sides at once: each delete is journaled before and after, so a crash between them is resumable.
    await Promise.all(
      (['source', 'destination'] as const).map(async (side) => {
        await ctx.journal.append({ type: 'snapshot-deleting', volume: s.pair.name, side, name })
        await s.pair[side].deleteSnapshot(name, ctx.signal)
        await ctx.journal.append({ type: 'snapshot-deleted', volume: s.pair.name, side, name })
      }),
    )
  }
}
