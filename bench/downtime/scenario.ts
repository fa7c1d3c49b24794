/** The downtime bench's scenarios and what one run of one method measured (shared by runners, report, charts). */
import type { OsdMalloc } from '../lib/ceph-regions.js'
import type { OsdWrites } from './osd-latency.js'

export const MiB = 1 << 20
export const GiB = 1 << 30

export type WriterRate = number | 'bursty'

export interface Scenario {
  readonly imageBytes: number
  readonly writer: WriterRate
  /** tbf rate ('100mbit') or undefined for the unshaped veth. */
  readonly link: string | undefined
}

export type Method = 'snapferry' | 'manual' | 'manual-3'

/** Every method, in the order of a scenario's first repetition. */
export const METHODS: readonly Method[] = ['snapferry', 'manual', 'manual-3']

export interface RoundPoint {
  readonly round: number
  /** Changed bytes the round shipped (w + z records). */
  readonly deltaBytes: number
  /** Extents of the delta (runs recorded before this field was added have none). */
  readonly extents?: number | undefined
  readonly durationMs: number
  /** snapferry only: the window predicted after this round. */
  readonly predictedWindowMs?: number | undefined
}

export interface MethodRun {
  readonly method: Method
  /** Which repetition of the scenario this run belongs to (0-based; absent in results with one run each). */
  readonly repetition?: number | undefined
  /** Warm delta rounds before the cutover (the base and the final round not counted). */
  readonly warmRounds: number
  /**
   * Manual runbook only, with a time budget (--baseline-budget): the time its base and warm rounds had,
   * after which it started no new warm round. Absent without a budget.
   */
  readonly warmBudgetMs?: number | undefined
  /** Manual runbook only: the warm rounds it was to run, when the time budget cut it short. */
  readonly plannedWarmRounds?: number | undefined
  readonly rounds: readonly RoundPoint[]
  /** Writer stopped (last write flushed) → destination holds the final snapshot, verified. */
  readonly windowMs: number
  readonly finalDeltaBytes: number
  /** Time the final snapshot took on the source (part of the window). */
  readonly finalSnapshotMs: number
  readonly wireBytes: number
  readonly totalMs: number
  /** snapferry only: the window it predicted before deciding to cut over. */
  readonly predictedMs?: number | undefined
  /** snapferry only: the downtime it measured itself (first cutover step's start → last step's end). */
  readonly downtimeMs?: number | undefined
  /** snapferry only: where the window went (step → ms). */
  readonly breakdown?: Readonly<Record<string, number>> | undefined
  /** sha256 of source and destination at the final snapshot, read after the run. */
  readonly identical: boolean
  /** What the live writer really wrote per second during this run. */
  readonly writerBytesPerSecond: number
  /** Share of CPU time the hypervisor stole during this run (0..1; absent in old results). */
  readonly cpuSteal?: number | undefined
  /** Client writes each cluster's OSD served during the run and their mean latency (absent in old results). */
  readonly osd?:
    | { readonly source?: OsdWrites | undefined; readonly destination?: OsdWrites | undefined }
    | undefined
}

export interface ScenarioResult {
  readonly scenario: Scenario
  /** When, with which command and on which commit this scenario was measured (absent in old results). */
  readonly measured?:
    | {
        readonly at: string
        readonly command: string
        readonly commit: string
        /** The OSDs' allocator (ceph-regions.ts); results saved before 2026-12-02 06:00 UTC were all glibc. */
        readonly osdMalloc?: OsdMalloc | undefined
      }
    | undefined
  /** Measured link rate (bytes/s) used for the physical floor. */
  readonly linkBytesPerSecond: number
  /** Every run of every method, in the order they ran (several per method with --repeat). */
  readonly runs: readonly MethodRun[]
}

/** The runs of one method, in the order they ran. */
export function runsOf(r: ScenarioResult, method: Method): MethodRun[] {
  return r.runs.filter((x) => x.method === method)
}

/**
 * The median run of a method by window: the middle run of an odd count, the lower middle of an even
 * one, so the figures reported beside the window (rounds, delta, prediction) come from one real run.
 */
export function medianRun(r: ScenarioResult, method: Method): MethodRun | undefined {
  const sorted = runsOf(r, method).sort((a, b) => a.windowMs - b.windowMs)
  return sorted[Math.floor((sorted.length - 1) / 2)]
}

/**
 * The order the methods run in for repetition `rep`: snapferry first in even repetitions, last in odd
 * ones, so neither method always gets the host's earlier (or later) minutes. "manual" repeats the warm
 * rounds of the latest snapferry run before it (the previous repetition's when snapferry runs last).
 */
export function methodOrder(rep: number): Method[] {
  return rep % 2 === 0 ? [...METHODS] : [...METHODS].reverse()
}

export function scenarioName(s: Scenario): string {
  const size = `${s.imageBytes / GiB}GiB`
  const w = s.writer === 'bursty' ? 'bursty' : `${s.writer / MiB}MiBps`
  return `${size}-${w}-${s.link ?? 'unshaped'}`
}

export function scenarioTitle(s: Scenario): string {
  const w = s.writer === 'bursty' ? 'bursty writer (mean 2 MiB/s)' : `writer ${s.writer / MiB} MiB/s`
  return `${s.imageBytes / GiB} GiB image, ${w}, ${s.link === undefined ? 'unshaped veth' : `tbf ${s.link}`}`
}

/** The full matrix the issue asks for: 2 sizes × 4 writers × 2 links. */
export function fullMatrix(): Scenario[] {
  const out: Scenario[] = []
  for (const link of ['100mbit', undefined])
    for (const imageBytes of [GiB, 8 * GiB])
      for (const writer of [MiB, 2 * MiB, 4 * MiB, 'bursty'] as const) out.push({ imageBytes, writer, link })
  return out
}

/**
 * The physical floor of a cutover window: the final snapshot plus the final delta at the link's rate.
 * Nothing that ships the final delta over this link after a snapshot can be faster.
 */
export function physicalFloorMs(
  finalSnapshotMs: number,
  finalDeltaBytes: number,
  linkBytesPerSecond: number,
): number {
  return finalSnapshotMs + (finalDeltaBytes / linkBytesPerSecond) * 1000
}

/**
 * Saved results with `fresh` ones merged in: a scenario measured again replaces its old result; the
 * others stay. Ordered like the full matrix, so partial runs add up to one table.
 */
export function mergeResults(
  saved: readonly ScenarioResult[],
  fresh: readonly ScenarioResult[],
): ScenarioResult[] {
  const byName = new Map(saved.map((r) => [scenarioName(r.scenario), r]))
  for (const r of fresh) byName.set(scenarioName(r.scenario), r)
  const order = fullMatrix().map(scenarioName)
  const rank = (r: ScenarioResult) => {
    const i = order.indexOf(scenarioName(r.scenario))
    return i < 0 ? order.length : i
  }
  return [...byName.values()].sort((a, b) => rank(a) - rank(b))
}
