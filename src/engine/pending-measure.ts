/**
 * What is already changed since each volume's last snapshot, for the predictor: measured by the source
 * (rbd: `rbd diff --from-snap` through the agent's librbd session) as soon as the round's export ended,
 * beside the destination's finish (docs/CONVERGENCE.md, "pending bytes").
 */
import { RemoteVolumeDriver } from '../agent-protocol/remote-volume-driver.js'
import type { PendingMeasurement } from '../convergence/predictor.js'
import type { EngineContext } from './engine-context.js'
import type { VolumeState } from './reconcile.js'

/** A measurement started when a volume's source finished exporting (RoundHooks.onExported). */
export interface EarlyPending {
  readonly snapshot: string
  /** Wall-clock ms, like VolumeState.lastSnapshotAt. */
  readonly startedAt: number
  readonly bytes: Promise<number | undefined>
}

export function measureEarly(ctx: EngineContext, s: VolumeState, snapshot: string): EarlyPending {
  const startedAt = Date.now()
  const bytes =
    s.pair.source instanceof RemoteVolumeDriver
      ? s.pair.source.estimate(snapshot, ctx.signal).catch(() => undefined)
      : Promise.resolve(undefined)
  return { snapshot, startedAt, bytes }
}

/**
 * What each source says is already changed since its last snapshot, when every source can tell cheaply.
 * A measurement started when the round's export ended (`early`, for the snapshot the round shipped) is
 * used as it is: it ran while the destination finished, and the predictor adds the writes since.
 */
export async function measurePending(
  ctx: EngineContext,
  states: readonly VolumeState[],
  early?: Map<string, EarlyPending>,
): Promise<PendingMeasurement | undefined> {
  const taken = new Map(early ?? [])
  early?.clear()
  const out = {
    bytes: {} as Record<string, number>,
    ageMs: {} as Record<string, number>,
    sinceSnapshotMs: {} as Record<string, number>,
    early: [] as string[],
  }
  for (const s of states) {
    const name = s.pair.name
    if (!(s.pair.source instanceof RemoteVolumeDriver) || s.last === null) return undefined
    const e = taken.get(name)
    let at = Date.now()
    let n = e?.snapshot === s.last ? await e.bytes : undefined
    if (e && n !== undefined) {
      at = e.startedAt
      out.early.push(name)
    } else n = await s.pair.source.estimate(s.last, ctx.signal).catch(() => undefined)
    if (n === undefined) return undefined
    out.bytes[name] = n
    out.ageMs[name] = Date.now() - at
    if (s.lastSnapshotAt !== null) out.sinceSnapshotMs[name] = Math.max(0, at - s.lastSnapshotAt)
  }
  return out
}
