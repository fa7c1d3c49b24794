/**
 * npm run bench (SSH part) — snapferry's relay over SSH against `cat IMAGE | ssh HOST dd of=…` (OpenSSH),
 * on the same image and the same link, side by side: two network namespaces with sshd each, unshaped
 * veth and tbf 100 Mbit, for incompressible, mixed VM-like and mostly-zero data. The figure for snapferry
 * is its base round's transfer time (export → relay → import, compression `auto`, every segment verified);
 * CPU is the whole machine's (both agents, controller, both sshd) from /proc/stat, as for the baseline.
 * Needs root, iproute2 and openssh-server. Usage: node dist/bench/ssh-bench.js [MiB_unshaped=256] [MiB_100mbit=48]
 */
import { spawn, spawnSync } from 'node:child_process'
import { mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { readJournal } from '../src/state/journal.js'
import { startTwoHosts, type TwoHosts } from './lib/two-hosts.js'

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..')
const CLI = path.join(ROOT, 'dist/src/cli/main.js')
const AGENT = path.join(ROOT, 'dist/agents/snapferry-agent.js')
const unshapedMiB = Number(process.argv[2] ?? 256)
const shapedMiB = Number(process.argv[3] ?? 48)

type Kind = 'incompressible' | 'mixed' | 'mostly-zero'

/** Deterministic content; `mixed` is a third zeros, a third text, a third random per MiB, like a VM disk. */
async function makeImage(file: string, mib: number, kind: Kind): Promise<void> {
  const fh = await open(file, 'w')
  const text = Buffer.from(
    'Nov 22 10:00:00 vm kernel: eth0: link up, 10Gbps, full duplex\n'.repeat(17000).slice(0, 1 << 20),
  )
  let x = 12345
  const rnd = () => {
    const b = Buffer.allocUnsafe(1 << 20)
    for (let i = 0; i < b.length; i += 4) {
      x ^= x << 13
      x ^= x >>> 17
      x ^= x << 5
      b.writeInt32LE(x | 0, i)
    }
    return b
  }
  for (let i = 0; i < mib; i++) {
    let b: Buffer
    if (kind === 'incompressible') b = rnd()
    else if (kind === 'mostly-zero') b = i % 10 === 0 ? rnd() : Buffer.alloc(1 << 20)
    else b = i % 3 === 0 ? Buffer.alloc(1 << 20) : i % 3 === 1 ? text : rnd()
    await fh.write(b, 0, b.length, i << 20)
  }
  await fh.close()
}

function cpuJiffies(): Promise<number> {
  return readFile('/proc/stat', 'utf8').then((s) => {
    const f = (s.split('\n')[0] as string).trim().split(/\s+/).slice(1).map(Number)
    return (f[0] ?? 0) + (f[1] ?? 0) + (f[2] ?? 0) + (f[5] ?? 0) + (f[6] ?? 0)
  })
}

function runIn(
  h: TwoHosts,
  argv: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number | null; err: string; rssKiB: number }> {
  return new Promise((resolve) => {
    const full = h.inA(['/usr/bin/time', '-f', 'RSS %M', ...argv])
    const { SSH_AUTH_SOCK: _d, ...base } = process.env
    const p = spawn(full[0] as string, full.slice(1), {
      env: { ...base, ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    })
    let err = ''
    p.stderr.on('data', (b: Buffer) => {
      err += b.toString()
    })
    p.on('exit', (code) => resolve({ code, err, rssKiB: Number(/RSS (\d+)/.exec(err)?.[1] ?? 0) }))
  })
}

interface Row {
  link: string
  kind: Kind
  mib: number
  sfMBps: number
  baseMBps: number
  sfCpu: number
  baseCpu: number
  wireRatio: number
  sfRssMB: number
}

async function one(h: TwoHosts, link: string, kind: Kind, mib: number): Promise<Row> {
  const dir = await mkdtemp(path.join(tmpdir(), 'sf-sshbench-'))
  const src = path.join(dir, 'src.img')
  await makeImage(src, mib, kind)
  spawnSync('sync')
  // Baseline: the OpenSSH pipe an operator types (page cache warm for both, as the first read warmed it).
  const sshOpts = ['-o', 'BatchMode=yes', '-o', `UserKnownHostsFile=${h.knownHosts}`, '-i', h.identity]
  const c0 = await cpuJiffies()
  const t0 = performance.now()
  const b = await runIn(h, [
    'bash',
    '-c',
    `cat "$1" | ssh ${sshOpts.join(' ')} root@${h.ipB} "dd of=$2 bs=1M status=none"`,
    'x',
    src,
    path.join(dir, 'dd.img'),
  ])
  const baseMs = performance.now() - t0
  const baseCpu = ((await cpuJiffies()) - c0) / 100
  if (b.code !== 0) throw new Error(`baseline failed: ${b.err}`)
  // snapferry: a pipeline whose base round is the same bytes over the same link.
  const file = path.join(dir, 'p.yaml')
  await writeFile(
    file,
    `apiVersion: snapferry/v1
kind: Pipeline
name: bench
volumes:
  - name: disk
    source: { driver: file, path: ${src}, host: root@${h.ipA} }
    destination: { driver: file, path: ${path.join(dir, 'dst.img')}, host: root@${h.ipB} }
stateDir: state
convergence: { whenConverged: cutover, minRounds: 0, targetDowntime: 600s }
cutover: { verify: none }
transport:
  ssh: { config: none, knownHosts: ${h.knownHosts}, identityFile: ${h.identity}, agentCommand: [${process.execPath}, ${AGENT}] }
`,
  )
  const c1 = await cpuJiffies()
  const s = await runIn(h, [process.execPath, CLI, 'run', file])
  const sfCpuAll = ((await cpuJiffies()) - c1) / 100
  if (s.code !== 0) throw new Error(`snapferry failed: ${s.err}`)
  const rounds = (await readJournal(path.join(dir, 'state')))
    .filter((e) => e.type === 'round-completed')
    .map((e) => (e as { stats: { transferMs: number; streamBytes: number; wireBytes?: number } }).stats)
  const base = rounds[0] as { transferMs: number; streamBytes: number; wireBytes?: number }
  await rm(dir, { recursive: true, force: true })
  const bytes = mib << 20
  return {
    link,
    kind,
    mib,
    sfMBps: bytes / 1e6 / (base.transferMs / 1000),
    baseMBps: bytes / 1e6 / (baseMs / 1000),
    sfCpu: sfCpuAll / (bytes / 1e9),
    baseCpu: baseCpu / (bytes / 1e9),
    wireRatio: (base.wireBytes ?? base.streamBytes) / bytes,
    sfRssMB: s.rssKiB / 1024,
  }
}

export async function sshBench(): Promise<Row[] | string> {
  if (process.getuid?.() !== 0) return 'skipped: needs root (network namespaces)'
  if (spawnSync('test', ['-x', '/usr/sbin/sshd']).status !== 0) return 'skipped: needs openssh-server'
  const h = await startTwoHosts()
  const rows: Row[] = []
  try {
    for (const [link, rate, mib] of [
      ['veth, unshaped', undefined, unshapedMiB],
      ['tbf 100 Mbit', '100mbit', shapedMiB],
    ] as const) {
      await h.shape(rate)
      for (const kind of ['incompressible', 'mixed', 'mostly-zero'] as const) {
        const r = await one(h, link, kind, mib)
        rows.push(r)
        process.stderr.write(
          `  ${link} ${kind}: snapferry ${r.sfMBps.toFixed(1)} MB/s, cat|ssh|dd ${r.baseMBps.toFixed(1)} MB/s\n`,
        )
      }
    }
  } finally {
    await h.stop()
  }
  return rows
}

export function sshTable(rows: Row[]): string {
  const lines = [
    '| link | data | MiB | snapferry MB/s | `cat \\| ssh \\| dd` MB/s | ratio | wire/raw | CPU s/GB snapferry | CPU s/GB baseline | controller peak RSS |',
    '|---|---|---|---|---|---|---|---|---|---|',
  ]
  for (const r of rows)
    lines.push(
      `| ${r.link} | ${r.kind} | ${r.mib} | ${r.sfMBps.toFixed(1)} | ${r.baseMBps.toFixed(1)} | **${(r.sfMBps / r.baseMBps).toFixed(2)}×** | ${r.wireRatio.toFixed(2)} | ${r.sfCpu.toFixed(2)} | ${r.baseCpu.toFixed(2)} | ${r.sfRssMB.toFixed(0)} MB |`,
    )
  return lines.join('\n')
}

if (process.argv[1]?.endsWith('ssh-bench.js')) {
  const r = await sshBench()
  console.log(typeof r === 'string' ? r : sshTable(r))
}
