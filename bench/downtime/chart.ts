/**
 * One SVG picture per downtime scenario, written by the bench itself (no plotting library): left, each
 * round's delta size for every method (log scale) with snapferry's predicted window per round; right,
 * the final cutover window of each method next to the physical floor. Pure: results in, SVG text out.
 */
import {
  METHODS,
  type MethodRun,
  medianRun,
  physicalFloorMs,
  runsOf,
  type ScenarioResult,
  scenarioTitle,
} from './scenario.js'

const W = 760
const H = 300
const COLORS: Record<string, string> = { snapferry: '#1b7837', manual: '#c2570c', 'manual-3': '#7b3294' }

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
}

function fmtBytes(b: number): string {
  if (b >= 1 << 30) return `${(b / (1 << 30)).toFixed(1)} GiB`
  if (b >= 1 << 20) return `${(b / (1 << 20)).toFixed(b >= 10 << 20 ? 0 : 1)} MiB`
  return `${Math.round(b / 1024)} KiB`
}

/**
 * With several runs per method the picture shows each method's median run (by window), and each window
 * bar carries a line from the fastest to the slowest run.
 */
export function scenarioChart(all: ScenarioResult): string {
  const medians = METHODS.map((m) => medianRun(all, m)).filter((m): m is MethodRun => m !== undefined)
  const r: ScenarioResult = { ...all, runs: medians }
  const out: string[] = []
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`,
    `<title>${esc(`Cutover downtime: ${scenarioTitle(r.scenario)}`)}</title>`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="10" y="16" font-size="13" font-weight="bold">${esc(scenarioTitle(r.scenario))}</text>`,
  )
  // Left panel: delta bytes per round, log scale.
  const L = { x: 60, y: 40, w: 380, h: 210 }
  const maxRound = Math.max(1, ...r.runs.flatMap((m) => m.rounds.map((p) => p.round)))
  const deltas = r.runs.flatMap((m) => m.rounds.map((p) => Math.max(p.deltaBytes, 4096)))
  const lo = Math.log10(Math.min(...deltas, 1 << 20))
  const hi = Math.log10(Math.max(...deltas, 1 << 20)) + 0.1
  const x = (round: number) => L.x + (round / maxRound) * L.w
  const y = (bytes: number) => L.y + L.h - ((Math.log10(Math.max(bytes, 4096)) - lo) / (hi - lo)) * L.h
  out.push(`<rect x="${L.x}" y="${L.y}" width="${L.w}" height="${L.h}" fill="none" stroke="#999"/>`)
  out.push(`<text x="${L.x}" y="${L.y - 6}">delta shipped per round (log scale); round 0 is the base</text>`)
  // Grid lines at 0.1, 1, 10, 100 … MiB.
  const mibLog = Math.log10(1 << 20)
  for (let e = Math.ceil(lo - mibLog); e <= Math.floor(hi - mibLog); e++) {
    const bytes = (1 << 20) * 10 ** e
    const yy = y(bytes).toFixed(1)
    out.push(
      `<line x1="${L.x}" x2="${L.x + L.w}" y1="${yy}" y2="${yy}" stroke="#eee"/>`,
      `<text x="${L.x - 4}" y="${Number(yy) + 4}" text-anchor="end">${esc(fmtBytes(bytes))}</text>`,
    )
  }
  for (let k = 0; k <= maxRound; k += Math.max(1, Math.ceil(maxRound / 10)))
    out.push(`<text x="${x(k)}" y="${L.y + L.h + 14}" text-anchor="middle">${k}</text>`)
  for (const m of r.runs) {
    const pts = m.rounds.map((p) => `${x(p.round).toFixed(1)},${y(p.deltaBytes).toFixed(1)}`).join(' ')
    out.push(`<polyline points="${pts}" fill="none" stroke="${COLORS[m.method]}" stroke-width="2"/>`)
    for (const p of m.rounds)
      out.push(
        `<circle cx="${x(p.round).toFixed(1)}" cy="${y(p.deltaBytes).toFixed(1)}" r="2.5" fill="${COLORS[m.method]}"/>`,
      )
  }
  // snapferry's predicted window per round, on its own axis (right edge of the left panel).
  const sf = r.runs.find((m) => m.method === 'snapferry')
  const predicted = sf?.rounds.filter((p) => p.predictedWindowMs !== undefined) ?? []
  if (predicted.length > 0) {
    const pmax = Math.max(...predicted.map((p) => p.predictedWindowMs as number), sf?.windowMs ?? 0) * 1.1
    const py = (ms: number) => L.y + L.h - (Math.min(ms, pmax) / pmax) * L.h
    const pts = predicted.map(
      (p) => `${x(p.round).toFixed(1)},${py(p.predictedWindowMs as number).toFixed(1)}`,
    )
    out.push(
      `<polyline points="${pts.join(' ')}" fill="none" stroke="${COLORS.snapferry}" stroke-dasharray="4 3"/>`,
      `<text x="${L.x + L.w + 4}" y="${L.y + 8}" fill="${COLORS.snapferry}">${(pmax / 1000).toFixed(1)} s</text>`,
      `<text x="${L.x + L.w + 4}" y="${L.y + L.h}" fill="${COLORS.snapferry}">0 s</text>`,
    )
  }
  // Right panel: final windows and the floor.
  const R = { x: 530, y: 40, w: 200, h: 210 }
  const floor = sf ? physicalFloorMs(sf.finalSnapshotMs, sf.finalDeltaBytes, r.linkBytesPerSecond) : undefined
  const bars = [
    ...r.runs.map((m) => ({
      label: m.method,
      ms: m.windowMs,
      color: COLORS[m.method] as string,
      spread: runsOf(all, m.method).map((x) => x.windowMs),
    })),
    ...(sf?.predictedMs !== undefined
      ? [{ label: 'predicted', ms: sf.predictedMs, color: '#a6dba0', spread: [] }]
      : []),
    ...(floor !== undefined ? [{ label: 'floor', ms: floor, color: '#bbbbbb', spread: [] }] : []),
  ]
  const bmax = Math.max(...bars.flatMap((b) => [b.ms, ...b.spread])) * 1.15
  const bw = R.w / bars.length
  out.push(
    `<text x="${R.x}" y="${R.y - 6}">cutover window (writer stopped → verified)${all.runs.length > r.runs.length ? ', median run; line: all runs' : ''}</text>`,
    `<line x1="${R.x}" x2="${R.x + R.w}" y1="${R.y + R.h}" y2="${R.y + R.h}" stroke="#999"/>`,
  )
  bars.forEach((b, i) => {
    const hgt = (b.ms / bmax) * R.h
    const bx = R.x + i * bw + 4
    out.push(
      `<rect x="${bx.toFixed(1)}" y="${(R.y + R.h - hgt).toFixed(1)}" width="${(bw - 8).toFixed(1)}" height="${hgt.toFixed(1)}" fill="${b.color}"/>`,
      `<text x="${(bx + (bw - 8) / 2).toFixed(1)}" y="${(R.y + R.h - hgt - 3).toFixed(1)}" text-anchor="middle">${(b.ms / 1000).toFixed(2)} s</text>`,
      `<text x="${(bx + (bw - 8) / 2).toFixed(1)}" y="${R.y + R.h + 14}" text-anchor="middle" font-size="10">${esc(b.label)}</text>`,
    )
    if (b.spread.length > 1) {
      const cx = (bx + (bw - 8) / 2).toFixed(1)
      const yOf = (ms: number) => (R.y + R.h - (ms / bmax) * R.h).toFixed(1)
      out.push(
        `<line x1="${cx}" x2="${cx}" y1="${yOf(Math.min(...b.spread))}" y2="${yOf(Math.max(...b.spread))}" stroke="#333" stroke-width="1.5"/>`,
      )
    }
  })
  // Legend.
  let lx = L.x
  for (const m of r.runs) {
    out.push(
      `<rect x="${lx}" y="${H - 18}" width="10" height="10" fill="${COLORS[m.method]}"/>`,
      `<text x="${lx + 14}" y="${H - 9}">${esc(m.method)} (${m.warmRounds} warm rounds)</text>`,
    )
    lx += 170
  }
  if (predicted.length > 0)
    out.push(
      `<line x1="${lx}" x2="${lx + 18}" y1="${H - 13}" y2="${H - 13}" stroke="${COLORS.snapferry}" stroke-dasharray="4 3"/>`,
      `<text x="${lx + 22}" y="${H - 9}">predicted window</text>`,
    )
  out.push('</svg>')
  return `${out.join('\n')}\n`
}
