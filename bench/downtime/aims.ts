/**
 * Issue 6's aims, checked against the saved results (printed by the bench and written into
 * docs/BENCHMARKS.md's generated section). Pure: results in, Markdown out.
 *
 * - the data-plane window ≤ 1 s at 2 MiB/s over 100 Mbit on the 1 GiB image (the median snapferry run);
 * - the prediction within ±25 % of the measured window (every snapferry run, snapferry's own measure);
 * - never worse than the manual runbook (median against median, and within each repetition);
 * - every scenario of the matrix measured.
 */
import { pairedRatioRange, pct, predictionError, ratio } from './report.js'
import {
  fullMatrix,
  GiB,
  MiB,
  medianRun,
  runsOf,
  type Scenario,
  type ScenarioResult,
  scenarioName,
} from './scenario.js'

/** The scenario the ≤ 1 s aim is about. */
export const AIM_SCENARIO: Scenario = { imageBytes: GiB, writer: 2 * MiB, link: '100mbit' }
export const AIM_WINDOW_MS = 1000
export const AIM_PREDICTION_ERROR = 0.25

/** A scenario where snapferry's window was longer than a baseline's (ratio below 1). */
export interface Shortfall {
  readonly scenario: string
  readonly baseline: string
  readonly ratio: number
}

export interface AimsVerdict {
  /** The aim row's median snapferry window; undefined when the aim row has no result. */
  readonly aimWindowMs: number | undefined
  readonly windowMet: boolean
  readonly predictionRuns: number
  /** Runs whose prediction missed by more than ±25 %: scenario name and error. */
  readonly predictionMisses: readonly { readonly scenario: string; readonly error: number }[]
  /** Scenarios whose median ratio against a baseline is below 1. */
  readonly worseAtMedian: readonly Shortfall[]
  /** Single repetitions below 1 where the median is not. */
  readonly worseInARepetition: readonly Shortfall[]
  readonly scenariosCompared: number
  readonly notMeasured: readonly string[]
}

export function checkAims(results: readonly ScenarioResult[]): AimsVerdict {
  const aimRow = results.find((r) => scenarioName(r.scenario) === scenarioName(AIM_SCENARIO))
  const aimWindowMs = aimRow ? medianRun(aimRow, 'snapferry')?.windowMs : undefined
  const predictionMisses: { scenario: string; error: number }[] = []
  let predictionRuns = 0
  const worseAtMedian: Shortfall[] = []
  const worseInARepetition: Shortfall[] = []
  let scenariosCompared = 0
  for (const r of results) {
    const name = scenarioName(r.scenario)
    for (const sf of runsOf(r, 'snapferry')) {
      const e = predictionError(sf)
      if (e === undefined) continue
      predictionRuns++
      if (Math.abs(e) > AIM_PREDICTION_ERROR) predictionMisses.push({ scenario: name, error: e })
    }
    let compared = false
    for (const baseline of ['manual', 'manual-3'] as const) {
      const x = ratio(r, baseline)
      if (x === undefined) continue
      compared = true
      if (x < 1) {
        worseAtMedian.push({ scenario: name, baseline, ratio: x })
        continue
      }
      const range = pairedRatioRange(r, baseline)
      if (range && range.min < 1) worseInARepetition.push({ scenario: name, baseline, ratio: range.min })
    }
    if (compared) scenariosCompared++
  }
  const measured = new Set(results.map((r) => scenarioName(r.scenario)))
  return {
    aimWindowMs,
    windowMet: aimWindowMs !== undefined && aimWindowMs <= AIM_WINDOW_MS,
    predictionRuns,
    predictionMisses,
    worseAtMedian,
    worseInARepetition,
    scenariosCompared,
    notMeasured: fullMatrix()
      .map(scenarioName)
      .filter((n) => !measured.has(n)),
  }
}

const baselineName = (b: string) => (b === 'manual' ? 'the same rounds' : '3 rounds')

/** The verdict as a Markdown list, one line per aim. */
export function aimsList(results: readonly ScenarioResult[]): string {
  const v = checkAims(results)
  const lines: string[] = []
  const aim = scenarioName(AIM_SCENARIO)
  const all = fullMatrix().length
  lines.push(
    v.aimWindowMs === undefined
      ? `- **Window ≤ 1 s** (${aim}): not measured yet.`
      : `- **Window ≤ 1 s** (${aim}): median ${(v.aimWindowMs / 1000).toFixed(2)} s: **${v.windowMet ? 'met' : 'missed'}**.`,
  )
  const byScenario = new Map<string, string[]>()
  for (const m of v.predictionMisses)
    byScenario.set(m.scenario, [...(byScenario.get(m.scenario) ?? []), pct(m.error)])
  const aimMisses = byScenario.get(aim)
  lines.push(
    `- **Prediction within ±25 %**: ${v.predictionRuns - v.predictionMisses.length} of ${v.predictionRuns} snapferry runs; in ${aim} ${aimMisses ? `**missed** by ${aimMisses.join(', ')}` : '**met** by every run'}.` +
      (byScenario.size > 0
        ? ` Outside: ${[...byScenario].map(([s, errs]) => `${s} (${errs.join(', ')})`).join('; ')}.`
        : ''),
  )
  const worse = v.worseAtMedian.map(
    (w) => `${w.scenario} against ${baselineName(w.baseline)} (${w.ratio.toFixed(2)}×)`,
  )
  const once = v.worseInARepetition.map(
    (w) => `${w.scenario} against ${baselineName(w.baseline)} (${w.ratio.toFixed(2)}× in one repetition)`,
  )
  lines.push(
    `- **Never worse than the manual runbook**: ${worse.length === 0 ? `**met** at the median in all ${v.scenariosCompared} scenarios measured` : `**missed** in ${worse.join('; ')}`}.` +
      (once.length > 0 ? ` Below 1 in a single repetition: ${once.join('; ')}.` : ''),
  )
  lines.push(
    v.notMeasured.length === 0
      ? `- **Every scenario measured**: all ${all}.`
      : `- **Not measured yet** (${v.notMeasured.length} of ${all}): ${v.notMeasured.map((n) => `\`--only ${n}\``).join(', ')}.`,
  )
  return lines.join('\n')
}
