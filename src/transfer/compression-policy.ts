/**
 * `compression: auto` (pure): pick the zstd level that moves raw bytes fastest through the sender's
 * critical path. Each segment reports its raw size, how long compressing took and how long the sender
 * then waited for the network; the rate of a level is raw bytes ÷ (compress + wait). Data that does
 * not compress, or a network faster than the CPU, makes the raw rate win; a slow link makes
 * compression win. A hill climb over LADDER: stay on the best level measured, and every PROBE_EVERY
 * segments try a neighbour for PROBE_LENGTH segments, so a change in the data or the link is noticed.
 */
export const LADDER = [0, 1, 3, 6] as const
export const PROBE_EVERY = 32
export const PROBE_LENGTH = 4
/** Output/input above this means the data does not compress: send raw without waiting for a probe. */
export const INCOMPRESSIBLE_RATIO = 0.97
/** A neighbour must beat the current level by this much to take over (no flapping on noise). */
export const SWITCH_MARGIN = 1.05
const EWMA = 0.3

export interface SegmentCost {
  readonly rawBytes: number
  /** Bytes the segment took on the wire (payload). */
  readonly wireBytes: number
  readonly compressMs: number
  /** Time the sender waited for the network (window, backpressure) after this segment. */
  readonly waitMs: number
}

export type CompressionSetting = 'auto' | number

export class CompressionPolicy {
  readonly #fixed: number | undefined
  readonly #ladder: readonly number[]
  readonly #rate = new Map<number, number>()
  #current: number
  #probe: { level: number; left: number } | undefined
  #sinceProbe = 0
  #turn = 0
  #ratio: number | undefined
  #ratioSamples = 0

  constructor(setting: CompressionSetting, maxLevel = 3) {
    this.#fixed = setting === 'auto' ? undefined : setting
    this.#ladder = LADDER.filter((l) => l <= maxLevel)
    this.#current = this.#fixed ?? 1
  }

  /** The level for the next segment (0: send raw). */
  get level(): number {
    return this.#probe?.level ?? this.#current
  }

  observe(cost: SegmentCost): void {
    if (this.#fixed !== undefined) return
    const level = this.level
    const ms = Math.max(cost.compressMs + cost.waitMs, 0.001)
    const r = cost.rawBytes / ms
    const old = this.#rate.get(level)
    this.#rate.set(level, old === undefined ? r : old * (1 - EWMA) + r * EWMA)
    if (level > 0 && !this.#probe) {
      const q = cost.wireBytes / Math.max(cost.rawBytes, 1)
      this.#ratio = this.#ratio === undefined ? q : this.#ratio * (1 - EWMA) + q * EWMA
      if (++this.#ratioSamples >= PROBE_LENGTH && this.#ratio > INCOMPRESSIBLE_RATIO) {
        this.#switchTo(0)
        return
      }
    }
    if (this.#probe) {
      this.#probe.left--
      if (this.#probe.left > 0) return
      const tried = this.#probe.level
      this.#probe = undefined
      const cur = this.#rate.get(this.#current) ?? 0
      if ((this.#rate.get(tried) ?? 0) > cur * SWITCH_MARGIN) this.#switchTo(tried)
      return
    }
    if (++this.#sinceProbe < PROBE_EVERY) return
    this.#sinceProbe = 0
    const i = this.#ladder.indexOf(this.#current)
    const neighbours = [this.#ladder[i - 1], this.#ladder[i + 1]].filter((l) => l !== undefined)
    if (neighbours.length === 0) return
    // Alternate down and up, so both directions get measured.
    const pick = neighbours[this.#turn++ % neighbours.length] as number
    this.#probe = { level: pick, left: PROBE_LENGTH }
  }

  #switchTo(level: number): void {
    this.#current = level
    this.#ratio = undefined
    this.#ratioSamples = 0
  }
}
