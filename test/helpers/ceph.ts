/**
 * Real Ceph clusters for tests: started with scripts/ceph-dev-cluster.sh (one mon, one memstore OSD
 * each, on 127.0.0.1), one set per test file, on ports reserved atomically so files can run in parallel.
 * The Ceph suites never skip in CI; elsewhere SNAPFERRY_SKIP_CEPH=1 skips them with that reason.
 */
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, rm } from 'node:fs/promises'
import path from 'node:path'
import { promisify } from 'node:util'
import { REPO_ROOT } from './built.js'

const run = promisify(execFile)
const SCRIPT = path.join(REPO_ROOT, 'scripts/ceph-dev-cluster.sh')
const PORTS = '/tmp/snapferry-ceph/ports'

export const CEPH_SKIP_REASON =
  process.env.SNAPFERRY_SKIP_CEPH === '1' && process.env.CI !== 'true'
    ? 'SNAPFERRY_SKIP_CEPH=1 (never in CI)'
    : undefined

export interface Cluster {
  readonly name: string
  readonly conf: string
  /** rbd with this cluster's conf; argv only. */
  rbd(...args: string[]): Promise<string>
}

export async function reservePort(): Promise<number> {
  await mkdir(PORTS, { recursive: true })
  for (let port = 7000; port < 9800; port += 100) {
    try {
      await mkdir(path.join(PORTS, String(port)))
      return port
    } catch {}
  }
  throw new Error('no free port range for a test cluster under /tmp/snapferry-ceph/ports')
}

export async function startClusters(count: number): Promise<{ clusters: Cluster[]; stop(): Promise<void> }> {
  if (!existsSync('/usr/bin/ceph-mon')) {
    throw new Error(
      'Ceph is not installed: apt-get install ceph-mon ceph-osd ceph-common python3-rbd (as .ci/run does), or SNAPFERRY_SKIP_CEPH=1 outside CI',
    )
  }
  const started: { name: string; port: number }[] = []
  const stop = async () => {
    await Promise.all(started.map((c) => run('bash', [SCRIPT, 'stop', c.name]).catch(() => {})))
    for (const c of started) {
      await rm(path.join(PORTS, String(c.port)), { recursive: true, force: true })
      await rm(path.join('/tmp/snapferry-ceph', c.name), { recursive: true, force: true })
    }
  }
  try {
    const clusters = await Promise.all(
      Array.from({ length: count }, async (_, i) => {
        const port = await reservePort()
        const name = `t${process.pid}x${i}`
        started.push({ name, port })
        const { stdout } = await run('bash', [SCRIPT, 'start', name, String(port)], { timeout: 120_000 })
        const conf = stdout.trim().split('\n').pop() as string
        return {
          name,
          conf,
          rbd: async (...args: string[]) =>
            (await run('rbd', ['--conf', conf, ...args], { maxBuffer: 64 << 20 })).stdout,
        }
      }),
    )
    return { clusters, stop }
  } catch (e) {
    await stop()
    throw e
  }
}
