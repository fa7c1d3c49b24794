/**
 * Real OpenStack for tests: scripts/openstack-lab/openstack-lab.sh starts Keystone, and per region Cinder
 * (RBD on its own Ceph cluster) and Nova (fake virt driver), from Debian's packages. One lab per test file,
 * on ports reserved like the Ceph test clusters. The suite never skips in CI; elsewhere
 * SNAPFERRY_SKIP_OPENSTACK=1 (or SNAPFERRY_SKIP_CEPH=1) skips it, saying so.
 */
import { execFile } from 'node:child_process'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { REPO_ROOT } from './built.js'
import { reservePort } from './ceph.js'

const run = promisify(execFile)
const SCRIPT = path.join(REPO_ROOT, 'scripts/openstack-lab/openstack-lab.sh')

export const OPENSTACK_SKIP_REASON =
  process.env.CI !== 'true' &&
  (process.env.SNAPFERRY_SKIP_OPENSTACK === '1' || process.env.SNAPFERRY_SKIP_CEPH === '1')
    ? 'SNAPFERRY_SKIP_OPENSTACK=1 or SNAPFERRY_SKIP_CEPH=1 (never in CI)'
    : undefined

export interface Lab {
  readonly dir: string
  /** OS_CLIENT_CONFIG_FILE / OS_CLIENT_SECURE_FILE for the CLI and for loadCloud. */
  readonly env: Record<string, string>
  readonly cephConf: { readonly RegionOne: string; readonly RegionTwo: string }
  readonly keystoneUrl: string
  readonly adminPassword: string
  /** The last ERROR lines of every service log, for a failed test's report. */
  errors(): string
  stop(): Promise<void>
}

export async function startLab(): Promise<Lab> {
  if (!existsSync('/usr/bin/keystone-manage')) {
    throw new Error(
      'OpenStack is not installed: apt-get install keystone cinder-api cinder-scheduler cinder-volume rabbitmq-server nova-api nova-conductor nova-scheduler placement-api python3-nova (as .ci/run does), or SNAPFERRY_SKIP_OPENSTACK=1 outside CI',
    )
  }
  // While developing: SNAPFERRY_OPENSTACK_LAB=DIR reuses a lab started by hand (openstack-lab.sh start DIR).
  const reuse = process.env.CI !== 'true' ? process.env.SNAPFERRY_OPENSTACK_LAB : undefined
  if (reuse) return labFrom(reuse, async () => {})
  const dir = await mkdtemp(path.join(tmpdir(), 'snapferry-oslab-'))
  // Two Ceph port ranges reserved like the Ceph suites'; the OpenStack ports sit in 15000–15990.
  const [p1, p2] = [await reservePort(), await reservePort()]
  const base = 15000 + ((p1 / 100) % 30) * 33
  const stop = async () => {
    await run('bash', [SCRIPT, 'stop', dir]).catch(() => {})
    await rm(dir, { recursive: true, force: true })
    for (const p of [p1, p2])
      await rm(path.join('/tmp/snapferry-ceph/ports', String(p)), { recursive: true, force: true })
  }
  try {
    await run('bash', [SCRIPT, 'start', dir, String(base), String(p1), String(p2)], {
      timeout: 600_000,
      maxBuffer: 16 << 20,
    })
  } catch (e) {
    const err = e as { stderr?: string }
    await stop()
    throw new Error(`the OpenStack lab did not start: ${err.stderr ?? String(e)}`)
  }
  return labFrom(dir, stop)
}

function labFrom(dir: string, stop: () => Promise<void>): Lab {
  const env = Object.fromEntries(
    readFileSync(path.join(dir, 'lab.env'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => l.split('=', 2) as [string, string]),
  )
  const secure = readFileSync(path.join(dir, 'secure.yaml'), 'utf8')
  return {
    dir,
    env: {
      OS_CLIENT_CONFIG_FILE: path.join(dir, 'clouds.yaml'),
      OS_CLIENT_SECURE_FILE: path.join(dir, 'secure.yaml'),
    },
    cephConf: {
      RegionOne: env.LAB_CEPH_CONF_RegionOne as string,
      RegionTwo: env.LAB_CEPH_CONF_RegionTwo as string,
    },
    keystoneUrl: env.LAB_KEYSTONE_URL as string,
    adminPassword: (/password: (\S+)/.exec(secure) as RegExpExecArray)[1] as string,
    errors: () => serviceErrors(dir),
    stop,
  }
}

function serviceErrors(dir: string): string {
  const logs = path.join(dir, 'log')
  if (!existsSync(logs)) return ''
  const out: string[] = []
  for (const f of readdirSync(logs).filter((n) => n.endsWith('.log') && !n.startsWith('rabbit'))) {
    const lines = readFileSync(path.join(logs, f), 'utf8')
      .split('\n')
      .filter((l) => / ERROR /.test(l) && !/pool quotas/.test(l))
    if (lines.length)
      out.push(
        `--- ${f} (last ${Math.min(15, lines.length)} of ${lines.length} ERROR lines)`,
        ...lines.slice(-15),
      )
  }
  return out.join('\n')
}
