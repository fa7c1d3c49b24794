/** The downtime bench's pure parts: the physical floor, ratios, prediction error, the generated section and picture. */
import { describe, expect, it } from 'vitest'
import { scenarioChart } from '../../../bench/downtime/chart.js'
import { parseProcStat, stealShare } from '../../../bench/downtime/cpu-steal.js'
import { osdWritesBetween } from '../../../bench/downtime/osd-latency.js'
import {
  breakdownTable,
  budgetNote,
  detailTable,
  MARK_END,
  MARK_START,
  pairedRatioRange,
  predictionError,
  provenanceList,
  ratio,
  replaceSection,
  summaryTable,
  warmRoundsOf,
} from '../../../bench/downtime/report.js'
import {
  fullMatrix,
  GiB,
  type MethodRun,
  MiB,
  medianRun,
  mergeResults,
  methodOrder,
  physicalFloorMs,
  type ScenarioResult,
  scenarioName,
} from '../../../bench/downtime/scenario.js'

const run = (method: MethodRun['method'], windowMs: number, extra: Partial<MethodRun> = {}): MethodRun => ({
  method,
  warmRounds: 4,
  rounds: [
    { round: 0, deltaBytes: 512 * MiB, durationMs: 40_000 },
    { round: 1, deltaBytes: 20 * MiB, durationMs: 3000, predictedWindowMs: 2500 },
    { round: 2, deltaBytes: 2 * MiB, durationMs: 900, predictedWindowMs: 700 },
  ],
  windowMs,
  finalDeltaBytes: 2 * MiB,
  finalSnapshotMs: 120,
  wireBytes: 600e6,
  totalMs: 60_000,
  identical: true,
  writerBytesPerSecond: 2 * MiB,
  ...extra,
})

const result: ScenarioResult = {
  scenario: { imageBytes: GiB, writer: 2 * MiB, link: '100mbit' },
  linkBytesPerSecond: 10e6,
  runs: [
    run('snapferry', 800, { predictedMs: 900, downtimeMs: 750 }),
    run('manual', 1600),
    run('manual-3', 2400),
  ],
}

describe('downtime bench report', () => {
  it('the floor is the final snapshot plus the final delta at link rate', () => {
    expect(physicalFloorMs(120, 10e6, 10e6)).toBe(1120)
  })

  it('ratios are manual ÷ snapferry, prediction error is against snapferry’s own measure', () => {
    expect(ratio(result, 'manual')).toBe(2)
    expect(ratio(result, 'manual-3')).toBe(3)
    expect(predictionError(medianRun(result, 'snapferry'))).toBeCloseTo(0.2, 10)
  })

  it('the matrix is 2 sizes × 4 writers × 2 links with unique names', () => {
    const m = fullMatrix()
    expect(m).toHaveLength(16)
    expect(new Set(m.map(scenarioName)).size).toBe(16)
    expect(scenarioName(result.scenario)).toBe('1GiB-2MiBps-100mbit')
  })

  it('the summary names the scenario, both ratios and a failed checksum loudly', () => {
    const t = summaryTable([result])
    expect(t).toContain(
      '| 1 GiB image, writer 2 MiB/s, tbf 100mbit | glibc | 1 | 0.80 s | 1.60 s | 2.40 s | **2.00×** | **3.00×** |',
    )
    expect(t).toContain('0.90 s / 0.75 s (+20 %)')
    const bad = { ...result, runs: [run('snapferry', 800, { identical: false })] }
    expect(summaryTable([bad])).toContain('**NO**')
  })

  it('a manual run its time budget cut short says so in the summary and the provenance', () => {
    const budgeted: ScenarioResult = {
      ...result,
      measured: { at: '2026-12-02T16:30:00.000Z', command: 'x', commit: 'abc' },
      runs: [
        run('snapferry', 800, { warmRounds: 9, totalMs: 960_000 }),
        run('manual', 300_000, { warmRounds: 2, plannedWarmRounds: 9, warmBudgetMs: 960_000 }),
        run('manual-3', 280_000, { warmRounds: 3, warmBudgetMs: 960_000 }),
      ],
    }
    expect(warmRoundsOf(budgeted.runs[1] as MethodRun)).toBe('2 of 9 (time budget)')
    expect(warmRoundsOf(budgeted.runs[2] as MethodRun)).toBe('3')
    expect(summaryTable([budgeted])).toContain('| 9 / 2 of 9 (time budget) |')
    expect(provenanceList([budgeted])).toContain(
      '; the manual runbook had a time budget (no warm round started past it): manual: 2 of 9 warm rounds within 16.0 min, manual-3: 3 warm rounds within 16.0 min',
    )
    expect(budgetNote(result)).toBe('')
  })

  it('replaces only the generated section of the document, or appends it once', () => {
    const doc = `# B\n\nbefore\n\n${MARK_START}\n\nold\n\n${MARK_END}\n\nafter\n`
    const out = replaceSection(doc, 'new')
    expect(out).toBe(`# B\n\nbefore\n\n${MARK_START}\n\nnew\n\n${MARK_END}\n\nafter\n`)
    const appended = replaceSection('# B\n', 'x')
    expect(replaceSection(appended, 'y').split(MARK_START)).toHaveLength(2)
  })

  it('draws one well-formed picture with every method, the prediction and the floor', () => {
    const svg = scenarioChart(result)
    expect(svg.startsWith('<svg')).toBe(true)
    expect(svg.trim().endsWith('</svg>')).toBe(true)
    for (const label of [
      'snapferry',
      'manual',
      'manual-3',
      'predicted',
      'floor',
      '0.80 s',
      '1.60 s',
      '0.33 s',
    ])
      expect(svg).toContain(label)
    expect(svg).not.toContain('NaN')
  })

  it('merges a new run into the saved results: a scenario measured again replaces the old one, in matrix order', () => {
    const unshaped: ScenarioResult = { ...result, scenario: { ...result.scenario, link: undefined } }
    const oneMiB: ScenarioResult = { ...result, scenario: { ...result.scenario, writer: MiB } }
    const again: ScenarioResult = {
      ...result,
      runs: [run('snapferry', 500)],
      measured: { at: '2026-11-22T10:00:00.000Z', command: 'npm run bench:downtime', commit: 'abc1234' },
    }
    const merged = mergeResults([unshaped, result, oneMiB], [again])
    expect(merged.map((r) => scenarioName(r.scenario))).toEqual([
      '1GiB-1MiBps-100mbit',
      '1GiB-2MiBps-100mbit',
      '1GiB-2MiBps-unshaped',
    ])
    expect(merged[1]).toBe(again)
  })

  it('repeated runs: the median run by window, ratios of medians with the paired range, every prediction error', () => {
    const rep = (
      method: MethodRun['method'],
      repetition: number,
      windowMs: number,
      extra: Partial<MethodRun> = {},
    ) => run(method, windowMs, { repetition, ...extra })
    const three: ScenarioResult = {
      ...result,
      measured: {
        at: '2026-11-23T00:10:00.000Z',
        command: 'npm run bench:downtime -- --repeat 3',
        commit: 'abc1234',
      },
      runs: [
        rep('snapferry', 0, 900, { predictedMs: 1000, downtimeMs: 800, warmRounds: 5 }),
        rep('manual', 0, 1800),
        rep('manual-3', 0, 2700),
        rep('manual-3', 1, 3000),
        rep('manual', 1, 1200),
        rep('snapferry', 1, 3000, { predictedMs: 2400, downtimeMs: 3000 }),
        rep('snapferry', 2, 600, { predictedMs: 600, downtimeMs: 500 }),
        rep('manual', 2, 2400),
        rep('manual-3', 2, 1800),
      ],
    }
    expect(medianRun(three, 'snapferry')?.windowMs).toBe(900)
    expect(medianRun(three, 'manual')?.windowMs).toBe(1800)
    expect(ratio(three, 'manual')).toBe(2)
    // Within each repetition: 1800/900, 1200/3000, 2400/600.
    expect(pairedRatioRange(three, 'manual')).toEqual({ min: 0.4, max: 4 })
    expect(pairedRatioRange(result, 'manual')).toBeUndefined()
    const t = summaryTable([three])
    expect(t).toContain(
      '| 1 GiB image, writer 2 MiB/s, tbf 100mbit | glibc | 3 | 0.90 s (0.60–3.00) | 1.80 s (1.20–2.40) | 2.70 s (1.80–3.00) | **2.00×** (0.40–4.00) | **3.00×** (1.00–3.00) |',
    )
    expect(t).toContain('1.00 s / 0.80 s (+25 %); all runs +25 %, -20 %, +20 %')
    expect(t).toContain('| 5 / 4 |')
    expect(
      detailTable([three])
        .split('\n')
        .filter((l) => l.startsWith('| 1GiB-2MiBps-100mbit | 2 | ')),
    ).toHaveLength(3)
    expect(breakdownTable([three]).split('\n')).toHaveLength(2 + 3)
    expect(provenanceList([three])).toContain('3 runs per method, the order alternating')
    // Results saved before the allocator was recorded ran on glibc's malloc; newer ones say which.
    expect(
      provenanceList([{ ...three, measured: { at: '2026-11-23T08:00:00Z', command: 'c', commit: 'x' } }]),
    ).toContain("OSDs on glibc's malloc")
    const tc = {
      ...three,
      measured: { at: '2026-12-02T06:00:00Z', command: 'c', commit: 'y', osdMalloc: 'tcmalloc' as const },
    }
    expect(provenanceList([tc])).toContain('OSDs on tcmalloc')
    expect(summaryTable([tc])).toContain('| 1 GiB image, writer 2 MiB/s, tbf 100mbit | tcmalloc | 3 |')
    const svg = scenarioChart(three)
    expect(svg).toContain('median run; line: all runs')
    expect(svg).toContain('0.90 s')
    expect(svg).not.toContain('3.00 s</text>')
    expect(svg).not.toContain('NaN')
  })

  it('alternates the order of the methods between repetitions', () => {
    expect(methodOrder(0)).toEqual(['snapferry', 'manual', 'manual-3'])
    expect(methodOrder(1)).toEqual(['manual-3', 'manual', 'snapferry'])
    expect(methodOrder(2)).toEqual(methodOrder(0))
  })

  it('gives each OSD’s mean client-write latency over a run, and shows it per run', () => {
    expect(osdWritesBetween({ count: 1000, latencySumS: 2 }, { count: 3000, latencySumS: 12 })).toEqual({
      writes: 2000,
      meanLatencyMs: 5,
    })
    expect(osdWritesBetween({ count: 10, latencySumS: 1 }, { count: 10, latencySumS: 1 })).toBeUndefined()
    expect(osdWritesBetween(undefined, { count: 10, latencySumS: 1 })).toBeUndefined()
    const withOsd: ScenarioResult = {
      ...result,
      runs: [
        run('snapferry', 800, {
          osd: { source: { writes: 9, meanLatencyMs: 2.14 }, destination: { writes: 9, meanLatencyMs: 4.8 } },
        }),
        run('manual', 1600, { osd: { source: { writes: 9, meanLatencyMs: 3 } } }),
        run('manual-3', 2400),
      ],
    }
    const rows = detailTable([withOsd]).split('\n')
    expect(rows[2]?.endsWith('| 2.1 / 4.8 |')).toBe(true)
    expect(rows[3]?.endsWith('| 3.0 / — |')).toBe(true)
    expect(rows[4]?.endsWith('| — |')).toBe(true)
  })

  it('reads the hypervisor steal share from /proc/stat', () => {
    const a = parseProcStat('cpu  100 0 50 800 10 0 0 40 0 0\ncpu0 1 2 3\n')
    const b = parseProcStat('cpu  200 0 100 900 10 0 0 140 0 0\n')
    expect(a).toEqual({ steal: 40, total: 1000 })
    expect(stealShare(a, b)).toBeCloseTo(100 / 350, 10)
    expect(stealShare(a, undefined)).toBeUndefined()
    expect(parseProcStat('intr 1 2 3')).toBeUndefined()
  })
})
