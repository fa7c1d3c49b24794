/** Parsing of the human units pipelines use: sizes ("10GiB"), rates ("100MiB/s", "1Gbit/s"), durations ("1m30s"). */

const SIZE_UNITS: Readonly<Record<string, number>> = {
  b: 1,
  k: 1024,
  kb: 1000,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1000 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1000 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tb: 1000 ** 4,
  tib: 1024 ** 4,
}

/** Bit units for link rates, as network people write them ("100mbit/s"). Values are bytes. */
const BIT_UNITS: Readonly<Record<string, number>> = {
  bit: 1 / 8,
  kbit: 1000 / 8,
  mbit: 1000 ** 2 / 8,
  gbit: 1000 ** 3 / 8,
}

const DURATION_UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

export const SIZE_EXAMPLES = '4096, 64KiB, 10GiB, 1.5TB'
export const RATE_EXAMPLES = '100MiB/s, 1Gbit/s, 500mbit/s, unlimited'
export const DURATION_EXAMPLES = '500ms, 30s, 5m, 1h30m'

/** Parse a size into bytes; undefined when the text is not a size. */
export function parseSize(text: string | number): number | undefined {
  if (typeof text === 'number') return Number.isSafeInteger(text) && text >= 0 ? text : undefined
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text)
  if (!m) return undefined
  const unit = (m[2] ?? '').toLowerCase()
  const factor = unit === '' ? 1 : SIZE_UNITS[unit]
  if (factor === undefined) return undefined
  const bytes = Number(m[1]) * factor
  return Number.isSafeInteger(Math.round(bytes)) ? Math.round(bytes) : undefined
}

/** Parse a rate into bytes per second; `unlimited` gives Infinity. */
export function parseRate(text: string | number): number | undefined {
  if (typeof text === 'number') return text > 0 ? text : undefined
  const t = text.trim().toLowerCase()
  if (t === 'unlimited' || t === 'none') return Number.POSITIVE_INFINITY
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]+)\s*(?:\/\s*s|ps)?$/.exec(t)
  if (!m) return undefined
  const unit = m[2] ?? ''
  const factor = BIT_UNITS[unit] ?? SIZE_UNITS[unit]
  if (factor === undefined) return undefined
  const rate = Number(m[1]) * factor
  return rate > 0 ? rate : undefined
}

/** Parse a duration into milliseconds ("1h30m", "45s", "250ms"; a bare number is seconds). */
export function parseDuration(text: string | number): number | undefined {
  if (typeof text === 'number') return text >= 0 ? text * 1000 : undefined
  const t = text.trim().toLowerCase()
  if (/^\d+(\.\d+)?$/.test(t)) return Number(t) * 1000
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/gy
  let total = 0
  let consumed = 0
  for (let m = re.exec(t); m; m = re.exec(t)) {
    total += Number(m[1]) * (DURATION_UNITS[m[2] ?? ''] ?? Number.NaN)
    consumed = re.lastIndex
  }
  return consumed === t.length && consumed > 0 && Number.isFinite(total) ? total : undefined
}

/** "1.5 GiB" — for reports and logs. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let v = bytes
  let i = 0
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024
    i++
  }
  return i === 0 ? `${v} B` : `${v.toFixed(v >= 100 ? 0 : v >= 10 ? 1 : 2)} ${units[i]}`
}

export function formatRate(bytesPerSecond: number): string {
  return Number.isFinite(bytesPerSecond) ? `${formatBytes(bytesPerSecond)}/s` : 'unlimited'
}

/** "1.25 s", "340 ms", "2m05s". */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return '∞'
  if (ms < 1000) return `${Math.round(ms)} ms`
  if (ms < 60_000) return `${(ms / 1000).toFixed(2)} s`
  const s = Math.round(ms / 1000)
  const h = Math.floor(s / 3600)
  const m = Math.floor((s % 3600) / 60)
  const rest = String(s % 60).padStart(2, '0')
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m${rest}s` : `${m}m${rest}s`
}
