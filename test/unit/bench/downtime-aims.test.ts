/** Issue 6's aims judged from saved downtime results (bench/downtime/aims.ts). */
import { describe, expect, it } from 'vitest'
import { aimsList, checkAims } from '../../../bench/downtime/aims.js'
import { GiB, type MethodRun, MiB, type ScenarioResult } from '../../../bench/downtime/scenario.js'

const run = (method: MethodRun['method'], windowMs: number, extra: Partial<MethodRun> = {}): MethodRun => ({
  method,
  warmRounds: 3,
  rounds: [],
  windowMs,
  finalDeltaBytes: MiB,
  finalSnapshotMs: 80,
  wireBytes: 1e9,
  totalMs: 60_000,
  identical: true,
  writerBytesPerSecond: 2 * MiB,
  ...extra,
})

const aimRow = (sfWindows: number[], errors: number[]): ScenarioResult => ({
  scenario: { imageBytes: GiB, writer: 2 * MiB, link: '100mbit' },
  linkBytesPerSecond: 12.5e6,
  runs: sfWindows.flatMap((w, i) => [
    run('snapferry', w, { repetition: i, downtimeMs: w, predictedMs: w * (1 + (errors[i] ?? 0)) }),
    run('manual', 1200, { repetition: i }),
    run('manual-3', 1300, { repetition: i }),
  ]),
})

describe('downtime aims', () => {
  it('judges the aim row by its median snapferry window', () => {
    expect(checkAims([aimRow([830, 970, 870], [0.02, 0.04, -0.1])])).toMatchObject({
      aimWindowMs: 870,
      windowMet: true,
      predictionRuns: 3,
      predictionMisses: [],
      worseAtMedian: [],
      scenariosCompared: 1,
    })
    expect(checkAims([aimRow([1010, 1400, 900], [0, 0, 0])])).toMatchObject({
      aimWindowMs: 1010,
      windowMet: false,
    })
  })

  it('lists every prediction outside ±25 % with its scenario', () => {
    const v = checkAims([aimRow([900, 900, 900], [0.28, 0.25, -0.3])])
    expect(v.predictionMisses.map((m) => m.scenario)).toEqual(['1GiB-2MiBps-100mbit', '1GiB-2MiBps-100mbit'])
    expect(v.predictionMisses.map((m) => Math.round(m.error * 100))).toEqual([28, -30])
    expect(aimsList([aimRow([900, 900, 900], [0.28, 0.1, -0.3])])).toContain(
      '- **Prediction within ±25 %**: 1 of 3 snapferry runs; in 1GiB-2MiBps-100mbit **missed** by +28 %, -30 %.',
    )
  })

  it('tells a median below the baseline from a single bad repetition', () => {
    const slowOnce: ScenarioResult = {
      ...aimRow([900, 1250, 900], [0, 0, 0]),
      scenario: { imageBytes: GiB, writer: 'bursty', link: undefined },
    }
    const slow: ScenarioResult = {
      ...aimRow([1500, 1500, 1500], [0, 0, 0]),
      scenario: { imageBytes: 8 * GiB, writer: MiB, link: undefined },
    }
    const v = checkAims([slowOnce, slow])
    expect(v.worseAtMedian).toEqual([
      { scenario: '8GiB-1MiBps-unshaped', baseline: 'manual', ratio: 0.8 },
      { scenario: '8GiB-1MiBps-unshaped', baseline: 'manual-3', ratio: 1300 / 1500 },
    ])
    expect(v.worseInARepetition).toEqual([
      { scenario: '1GiB-bursty-unshaped', baseline: 'manual', ratio: 0.96 },
    ])
    expect(v.aimWindowMs).toBeUndefined()
    const list = aimsList([slowOnce, slow])
    expect(list).toContain('- **Window ≤ 1 s** (1GiB-2MiBps-100mbit): not measured yet.')
    expect(list).toContain('**missed** in 8GiB-1MiBps-unshaped against the same rounds (0.80×)')
  })

  it('names the scenarios of the matrix without a result, as --only arguments', () => {
    const v = checkAims([aimRow([900], [0])])
    expect(v.notMeasured).toHaveLength(15)
    expect(v.notMeasured).not.toContain('1GiB-2MiBps-100mbit')
    expect(aimsList([aimRow([900], [0])])).toContain(
      '- **Not measured yet** (15 of 16): `--only 1GiB-1MiBps-100mbit`',
    )
  })
})
