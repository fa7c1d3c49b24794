/**
 * Two regions on one machine for the downtime bench: the two hosts of two-hosts.ts (network namespaces,
 * sshd each, tbf-shapeable veth) and a real bluestore Ceph cluster inside each namespace, reachable only
 * from its own host (mon on that namespace's 127.0.0.1), started with scripts/ceph-dev-cluster.sh.
 */
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import { startTwoHosts, type TwoHosts } from './two-hosts.js'

const run = promisify(execFile)

export interface Region {
  readonly ns: string
  /** ceph.conf of this region's cluster (valid inside its namespace only). */
  readonly conf: string
  /** rbd with this cluster's conf, run inside the region's namespace; argv only. */
  rbd(...args: string[]): Promise<string>
  /** The OSD's client write counters from its admin socket (perf dump), or undefined when unreadable. */
  osdWrites(): Promise<OsdWriteSample | undefined>
}

/** Client writes an OSD has served so far and the sum of their latencies (seconds). */
export interface OsdWriteSample {
  readonly count: number
  readonly latencySumS: number
}

/**
 * The OSDs' memory allocator. Upstream Ceph builds link tcmalloc; Debian's ceph-osd 16.2.15 does not (it
 * uses glibc's malloc), and on this 2-core host its op threads spent 46 % of their CPU in malloc and
 * free under small random writes (perf, docs/BENCHMARKS.md, "The host's bottleneck"). The bench gives
 * them tcmalloc (libgoogle-perftools4, which ceph-common depends on) with LD_PRELOAD unless told otherwise.
 */
export type OsdMalloc = 'tcmalloc' | 'glibc'

export const TCMALLOC_PATH = '/usr/lib/x86_64-linux-gnu/libtcmalloc.so.4'

/** SNAPFERRY_BENCH_OSD_MALLOC=glibc|tcmalloc, else tcmalloc. */
export function osdMallocFromEnv(): OsdMalloc {
  const v = process.env.SNAPFERRY_BENCH_OSD_MALLOC
  if (v === undefined || v === '') return 'tcmalloc'
  if (v !== 'glibc' && v !== 'tcmalloc')
    throw new Error(`SNAPFERRY_BENCH_OSD_MALLOC must be glibc or tcmalloc, not ${v}`)
  return v
}

export interface CephRegions {
  readonly hosts: TwoHosts
  /** What the OSDs allocate memory with. */
  readonly osdMalloc: OsdMalloc
  readonly a: Region
  readonly b: Region
  stop(): Promise<void>
}

export async function startCephRegions(
  repoRoot: string,
  osdMalloc: OsdMalloc = osdMallocFromEnv(),
): Promise<CephRegions> {
  if (osdMalloc === 'tcmalloc' && !existsSync(TCMALLOC_PATH))
    throw new Error(
      `${TCMALLOC_PATH} is missing: apt-get install libgoogle-perftools4, or run with SNAPFERRY_BENCH_OSD_MALLOC=glibc (--osd-malloc glibc)`,
    )
  const hosts = await startTwoHosts()
  const script = path.join(repoRoot, 'scripts/ceph-dev-cluster.sh')
  const cephDir = path.join(hosts.dir, 'ceph')
  const env = {
    ...process.env,
    SNAPFERRY_CEPH_DIR: cephDir,
    SNAPFERRY_CEPH_OSD_PRELOAD: osdMalloc === 'tcmalloc' ? TCMALLOC_PATH : '',
  }
  const names: string[] = []
  const region = async (ns: string, name: string): Promise<Region> => {
    names.push(name)
    // Each namespace has its own loopback, so both clusters can use the same ports.
    const { stdout } = await run(
      'ip',
      ['netns', 'exec', ns, 'bash', script, 'start', name, '7400', 'bluestore'],
      {
        env,
        timeout: 180_000,
      },
    )
    const conf = stdout.trim().split('\n').pop() as string
    // ceph-dev-cluster.sh: admin socket = <cluster dir>/run/$name.asok
    const asok = path.join(path.dirname(conf), 'run/osd.0.asok')
    return {
      ns,
      conf,
      osdWrites: async () => {
        try {
          const { stdout: dump } = await run(
            'ip',
            ['netns', 'exec', ns, 'ceph', '--admin-daemon', asok, 'perf', 'dump', 'osd'],
            { maxBuffer: 16 << 20, timeout: 30_000 },
          )
          const lat = (JSON.parse(dump) as { osd: { op_w_latency: { avgcount: number; sum: number } } }).osd
            .op_w_latency
          return { count: lat.avgcount, latencySumS: lat.sum }
        } catch {
          return undefined
        }
      },
      rbd: async (...args: string[]) =>
        (
          await run('ip', ['netns', 'exec', ns, 'rbd', '--conf', conf, ...args], {
            maxBuffer: 64 << 20,
            timeout: 600_000,
          })
        ).stdout,
    }
  }
  try {
    const [a, b] = await Promise.all([region(hosts.nsA, 'benchA'), region(hosts.nsB, 'benchB')])
    return {
      hosts,
      osdMalloc,
      a,
      b,
      stop: async () => {
        for (const name of names) await run('bash', [script, 'stop', name], { env }).catch(() => {})
        await hosts.stop()
      },
    }
  } catch (e) {
    for (const name of names) await run('bash', [script, 'stop', name], { env }).catch(() => {})
    await hosts.stop()
    throw e
  }
}
