/**
 * What is already changed since each volume's last snapshot, for the predictor: measured by the source
 * (rbd: `rbd diff --from-snap` through the agent's librbd session) as soon as the round's export ended,
 * beside the destination's finish, and waited for at most PENDING_WAIT_MS after the round
 * (docs/CONVERGENCE.md, "pending bytes").
 */
import { RemoteVolumeDriver } from '../agent-protocol/remote-volume-driver.js'
import type { PendingMeasurement } from '../convergence/predictor.js'
import type { EngineContext } from './engine-context.js'
import type { VolumeState } from './reconcile.js'

/** A measurement started when a volume's source finished exporting (RoundHooks.onExported). */
export interface EarlyPending {
  readonly snapshot: string
  readonly startedAt: number
  readonly bytes: Promise<number | undefined>
}

export function measureEarly(ctx: EngineContext, s: VolumeState, snapshot: string): EarlyPending {
  const startedAt = performance.now()
  const bytes =
    s.pair.source instanceof RemoteVolumeDriver
      ? s.pair.source.estimate(snapshot, ctx.signal).catch(() => undefined)
      : Promise.resolve(undefined)
  return { snapshot, startedAt, bytes }
}

/**
 * Longest the loop waits, once a round is done, for a pending-bytes measurement that started when the
 * round's export ended. Past it, the final delta is modelled from the dirty rate (as good on the downtime
 * bench's saved runs: BENCHMARKS.md), and that volume is not measured again in this loop: on an 8 GiB
 * image beside a live writer the measurement took ~1.5 s, which every round then waited for.
 */
export const PENDING_WAIT_MS = 250

/**
 * What each source says is already changed since its last snapshot, when every source can tell cheaply.
 * A measurement started when the round's export ended (`early`, for the snapshot the round shipped) is
 * used as it is: it ran while the destination finished, and the predictor adds the writes since. One
 * that is still running PENDING_WAIT_MS later puts its volume in `tooSlow`.
 */
export async function measurePending(
  ctx: EngineContext,
  states: readonly VolumeState[],
  loop?: { early: Map<string, EarlyPending>; tooSlow: Set<string> },
): Promise<PendingMeasurement | undefined> {
  const taken = new Map(loop?.early ?? [])
  loop?.early.clear()
  const out = {
    bytes: {} as Record<string, number>,
    ageMs: {} as Record<string, number>,
    early: [] as string[],
  }
  for (const s of states) {
    const name = s.pair.name
    if (!(s.pair.source instanceof RemoteVolumeDriver) || s.last === null || loop?.tooSlow.has(name))
      return undefined
    const e = taken.get(name)
    let at = performance.now()
    let n: number | undefined
    if (e?.snapshot === s.last) {
      const got = await withinMs(e.bytes, PENDING_WAIT_MS)
      if (got === 'late') {
        loop?.tooSlow.add(name)
        ctx.reporter.line(
          `  volume ${name}: measuring what is pending took over ${PENDING_WAIT_MS} ms after the round; predicting the final delta from the dirty rate instead`,
        )
        return undefined
      }
      n = got
      if (n !== undefined) {
        at = e.startedAt
        out.early.push(name)
      }
    }
    n ??= await s.pair.source.estimate(s.last, ctx.signal).catch(() => undefined)
    if (n === undefined) return undefined
    out.bytes[name] = n
    out.ageMs[name] = Math.round(performance.now() - at)
  }
  return out
}

/** `p`'s value, or 'late' when it has not settled within `ms`. */
async function withinMs<T>(p: Promise<T>, ms: number): Promise<T | 'late'> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([p, new Promise<'late'>((r) => (timer = setTimeout(r, ms, 'late')))])
  } finally {
    clearTimeout(timer)
  }
}
