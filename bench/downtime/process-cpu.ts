/**
 * CPU time per process group while something runs: /proc/<pid>/stat sampled every 100 ms, each process
 * charged what it used between the start (or its first sight) and its last sample. A process that exits
 * between two samples loses at most one interval's CPU. Groups: the command name, with Node processes
 * named by role (snapferry's controller or agent) and every group by network namespace.
 */
import { readdir, readFile, readlink } from 'node:fs/promises'
import type { CephRegions } from '../lib/ceph-regions.js'
import { runInA } from './run-context.js'

const TICK_MS = 10 // USER_HZ = 100 on Linux

interface Seen {
  comm: string
  group: string
  readonly first: number
  last: number
}

async function statOf(pid: string): Promise<{ comm: string; ticks: number } | undefined> {
  try {
    const s = await readFile(`/proc/${pid}/stat`, 'utf8')
    const close = s.lastIndexOf(')')
    const f = s.slice(close + 2).split(' ')
    return { comm: s.slice(s.indexOf('(') + 1, close), ticks: Number(f[11]) + Number(f[12]) }
  } catch {
    return undefined
  }
}

async function groupOf(pid: string, comm: string, nsNames: ReadonlyMap<string, string>): Promise<string> {
  let role = comm.replace(/[/:].*$/, '')
  if (comm === 'node' || comm === 'MainThread') {
    const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')
    role = cmd.includes('snapferry-agent') ? 'agent' : cmd.includes('cli/main.js') ? 'controller' : 'node'
  }
  const ns = await readlink(`/proc/${pid}/ns/net`).catch(() => '')
  return `${role}@${nsNames.get(ns) ?? 'root'}`
}

export interface CpuRecorder {
  /** Stop sampling; CPU-seconds per group, and the machine's busy and total CPU-seconds. */
  stop(): Promise<{ groups: Record<string, number>; busyS: number; totalS: number }>
}

async function machine(): Promise<{ busy: number; total: number }> {
  const line = (await readFile('/proc/stat', 'utf8')).split('\n')[0] as string
  const f = line.trim().split(/\s+/).slice(1, 9).map(Number)
  const idle = (f[3] as number) + (f[4] as number)
  const total = f.reduce((a, b) => a + b, 0)
  return { busy: total - idle, total }
}

/** Start sampling; `nsNames` maps a namespace link (`net:[inode]`) to a short name. */
export async function recordCpu(nsNames: ReadonlyMap<string, string>): Promise<CpuRecorder> {
  const seen = new Map<string, Seen>()
  const m0 = await machine()
  let starting = true
  const sample = async () => {
    for (const pid of await readdir('/proc')) {
      if (!/^\d+$/.test(pid)) continue
      const st = await statOf(pid)
      if (!st) continue
      // Keyed by pid: kernel threads rename themselves as they take on work.
      const key = pid
      const s = seen.get(key)
      if (s) {
        s.last = st.ticks
        // A process that exec'd (sshd's shell running the agent) is charged to what it became.
        if (s.comm !== st.comm) {
          s.comm = st.comm
          s.group = await groupOf(pid, st.comm, nsNames)
        }
      } else
        seen.set(key, {
          comm: st.comm,
          group: await groupOf(pid, st.comm, nsNames),
          first: starting ? st.ticks : 0,
          last: st.ticks,
        })
    }
    starting = false
  }
  await sample()
  let running = true
  const loop = (async () => {
    while (running) {
      await new Promise((r) => setTimeout(r, 100))
      await sample()
    }
  })()
  return {
    stop: async () => {
      running = false
      await loop
      await sample()
      const m1 = await machine()
      const groups: Record<string, number> = {}
      for (const s of seen.values()) {
        const used = ((s.last - s.first) * TICK_MS) / 1000
        if (used > 0) groups[s.group] = (groups[s.group] ?? 0) + used
      }
      return {
        groups,
        busyS: ((m1.busy - m0.busy) * TICK_MS) / 1000,
        totalS: ((m1.total - m0.total) * TICK_MS) / 1000,
      }
    },
  }
}

/** The two regions' network namespaces as recordCpu wants them: namespace link → 'A' (source) or 'B'. */
export async function regionNamespaces(r: CephRegions): Promise<Map<string, string>> {
  const m = new Map<string, string>()
  for (const [ns, short] of [
    [r.hosts.nsA, 'A'],
    [r.hosts.nsB, 'B'],
  ] as const) {
    const { out } = await runInA({ ...r.hosts, inA: (argv) => ['ip', 'netns', 'exec', ns, ...argv] }, [
      'readlink',
      '/proc/self/ns/net',
    ])
    m.set(out.trim(), short)
  }
  return m
}
