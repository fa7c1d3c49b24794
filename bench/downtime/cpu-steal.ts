/**
 * CPU time the hypervisor took from this machine while a run went on (/proc/stat "steal"): on a shared
 * cloud host it comes and goes by the minute and slows every process, Ceph's OSDs first. The bench
 * reports it next to each run so that a slow run can be told from a slow method.
 */
import { readFile } from 'node:fs/promises'

export interface CpuSample {
  readonly steal: number
  readonly total: number
}

export async function sampleCpu(): Promise<CpuSample | undefined> {
  try {
    return parseProcStat(await readFile('/proc/stat', 'utf8'))
  } catch {
    return undefined
  }
}

/** The aggregate "cpu" line: user nice system idle iowait irq softirq steal (guest time is in user). */
export function parseProcStat(text: string): CpuSample | undefined {
  const line = text.split('\n').find((l) => l.startsWith('cpu '))
  if (!line) return undefined
  const f = line.trim().split(/\s+/).slice(1, 9).map(Number)
  if (f.length < 8 || f.some((x) => !Number.isFinite(x))) return undefined
  return { steal: f[7] as number, total: f.reduce((a, b) => a + b, 0) }
}

/** Share of CPU time stolen between two samples (0..1), or undefined when unknown. */
export function stealShare(a: CpuSample | undefined, b: CpuSample | undefined): number | undefined {
  if (!a || !b || b.total <= a.total) return undefined
  return (b.steal - a.steal) / (b.total - a.total)
}
