/**
 * The predictor of this checkout, replayed on saved runs: for each journal (a downtime bench run keeps
 * them as `<work>/<scenario>/snapferry-runN.journal.json`), the rounds measured before the cutover go
 * through predictWindow again, with the pending bytes the run measured then (the journaled prediction's
 * final delta), and the result is printed beside the run's own prediction and its measured downtime.
 *
 * With --modelled the pending bytes are left out, so the final delta is modelled from the dirty rate
 * (what the loop predicts when it does not measure them).
 *
 * usage: node dist/bench/downtime/replay-predictor.js [--modelled] JOURNAL.json...
 */
import { readFileSync } from 'node:fs'
import { predictWindow } from '../../src/convergence/predictor.js'
import { historyFromJournal } from '../../src/engine/round-history.js'
import type { JournalEntry } from '../../src/state/journal-entries.js'

interface PredictionEntry {
  readonly type: 'prediction'
  readonly prediction: {
    readonly windowMs: number
    readonly volumes: { volume: string; finalDeltaBytes: number }[]
  }
}

const rows: string[][] = [
  ['journal', 'journaled prediction', 'replayed', 'measured', 'journaled error', 'replayed error'],
]
const modelled = process.argv.includes('--modelled')
for (const file of process.argv.slice(2).filter((a) => a !== '--modelled')) {
  const entries = JSON.parse(readFileSync(file, 'utf8')) as JournalEntry[]
  const cut = entries.findIndex((e) => e.type === 'phase' && (e as { phase?: string }).phase === 'cutover')
  const finished = entries.find((e) => e.type === 'cutover-finished') as
    | { result: { downtimeMs: number } }
    | undefined
  if (cut < 0 || !finished) {
    rows.push([file, 'no cutover in this journal'])
    continue
  }
  const before = entries.slice(0, cut)
  const last = before.filter((e) => e.type === 'prediction').pop() as unknown as PredictionEntry
  const replayed = predictWindow({
    rounds: historyFromJournal(before),
    // The bench's pipelines: no bandwidth limit, `verify: records`, hooks not measured before the cutover.
    bandwidthLimit: Number.POSITIVE_INFINITY,
    verify: 'records',
    beforeHooksMs: undefined,
    afterHooksMs: undefined,
    concurrency: 1,
    pauseBeforeCutoverMs: 0,
    pendingBytes: modelled
      ? undefined
      : Object.fromEntries(last.prediction.volumes.map((v) => [v.volume, v.finalDeltaBytes])),
  })
  const measured = finished.result.downtimeMs
  const err = (p: number) => `${p >= measured ? '+' : ''}${Math.round(((p - measured) / measured) * 100)} %`
  rows.push([
    file.split('/').slice(-2).join('/'),
    `${Math.round(last.prediction.windowMs)} ms`,
    `${Math.round(replayed.windowMs)} ms`,
    `${Math.round(measured)} ms`,
    err(last.prediction.windowMs),
    err(replayed.windowMs),
  ])
}
const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? []
for (const r of rows) console.log(r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  '))
