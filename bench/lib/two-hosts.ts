/**
 * Two "regions" on one machine: network namespaces A and B joined by a veth pair (10.77.N.1 in A,
 * 10.77.N.2 in B), an OpenSSH sshd in each, optionally the link shaped with tbf. The controller runs
 * inside A (a jump host that reaches both), so source agent → controller is local to A and
 * controller → destination agent crosses the shaped link. Needs root, iproute2 and openssh-server.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)

export interface TwoHosts {
  readonly dir: string
  readonly nsA: string
  readonly nsB: string
  readonly ipA: string
  readonly ipB: string
  /** Private key authorized for root on both hosts. */
  readonly identity: string
  /** known_hosts with both hosts' real keys. */
  readonly knownHosts: string
  /** Host public key lines (for building wrong files). */
  readonly hostKeys: { readonly a: string; readonly b: string }
  /** argv prefix that runs a command inside namespace A (where the controller lives). */
  inA(argv: readonly string[]): string[]
  /** Shape the A↔B link (both directions) with tbf, e.g. '100mbit'; undefined removes shaping. */
  shape(rate: string | undefined): Promise<void>
  linkDown(): Promise<void>
  linkUp(): Promise<void>
  /** Bytes that crossed the A↔B link so far (both directions, IP and above, from A's counters). */
  linkBytes(): Promise<number>
  stop(): Promise<void>
}

let counter = 0

async function sh(argv: string[]): Promise<string> {
  const { stdout } = await run(argv[0] as string, argv.slice(1))
  return stdout
}

export async function startTwoHosts(): Promise<TwoHosts> {
  const n = 100 + ((process.pid + counter++ * 7) % 150)
  const tag = `sf${process.pid % 10000}${counter}`
  const nsA = `${tag}a`
  const nsB = `${tag}b`
  const vA = `${tag}va`
  const vB = `${tag}vb`
  const ipA = `10.77.${n}.1`
  const ipB = `10.77.${n}.2`
  const dir = await mkdtemp(path.join(tmpdir(), 'snapferry-2h-'))
  await sh(['ip', 'netns', 'add', nsA])
  await sh(['ip', 'netns', 'add', nsB])
  await sh(['ip', 'link', 'add', vA, 'type', 'veth', 'peer', 'name', vB])
  await sh(['ip', 'link', 'set', vA, 'netns', nsA])
  await sh(['ip', 'link', 'set', vB, 'netns', nsB])
  for (const [ns, v, ip] of [
    [nsA, vA, ipA],
    [nsB, vB, ipB],
  ] as const) {
    await sh(['ip', '-n', ns, 'addr', 'add', `${ip}/24`, 'dev', v])
    await sh(['ip', '-n', ns, 'link', 'set', v, 'up'])
    await sh(['ip', '-n', ns, 'link', 'set', 'lo', 'up'])
  }
  await sh([
    'ssh-keygen',
    '-q',
    '-t',
    'ed25519',
    '-N',
    '',
    '-f',
    path.join(dir, 'id'),
    '-C',
    'snapferry-test',
  ])
  await writeFile(path.join(dir, 'authorized_keys'), await readFile(path.join(dir, 'id.pub')))
  await run('mkdir', ['-p', '/run/sshd'])
  const daemons: ChildProcess[] = []
  const hostKeys = { a: '', b: '' }
  for (const [side, ns, ip] of [
    ['a', nsA, ipA],
    ['b', nsB, ipB],
  ] as const) {
    const key = path.join(dir, `host_${side}`)
    await sh(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', key])
    hostKeys[side] = (await readFile(`${key}.pub`, 'utf8')).trim().split(/\s+/).slice(0, 2).join(' ')
    const conf = path.join(dir, `sshd_${side}.conf`)
    await writeFile(
      conf,
      [
        `ListenAddress ${ip}`,
        'Port 22',
        `HostKey ${key}`,
        `PidFile ${dir}/sshd_${side}.pid`,
        `AuthorizedKeysFile ${dir}/authorized_keys`,
        'PermitRootLogin prohibit-password',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'UsePAM no',
        'StrictModes no',
        'AllowStreamLocalForwarding yes',
        'ClientAliveInterval 5',
        'ClientAliveCountMax 6',
        'MaxSessions 64',
        'LogLevel ERROR',
        '',
      ].join('\n'),
    )
    const d = spawn('ip', ['netns', 'exec', ns, '/usr/sbin/sshd', '-D', '-e', '-f', conf], {
      stdio: ['ignore', 'ignore', 'pipe'],
    })
    let err = ''
    d.stderr?.on('data', (b: Buffer) => {
      err += b.toString()
    })
    daemons.push(d)
    // Wait until it listens.
    for (let i = 0; ; i++) {
      const ss = await sh(['ip', 'netns', 'exec', ns, 'ss', '-ltn']).catch(() => '')
      if (ss.includes(`${ip}:22`)) break
      if (i > 100 || d.exitCode !== null) throw new Error(`sshd in ${ns} did not start: ${err}`)
      await new Promise((r) => setTimeout(r, 50))
    }
  }
  const knownHosts = path.join(dir, 'known_hosts')
  await writeFile(knownHosts, `${ipA} ${hostKeys.a}\n${ipB} ${hostKeys.b}\n`)
  const tbf = async (ns: string, v: string, rate: string | undefined) => {
    await sh(['ip', 'netns', 'exec', ns, 'tc', 'qdisc', 'del', 'dev', v, 'root']).catch(() => '')
    if (rate)
      await sh([
        'ip',
        'netns',
        'exec',
        ns,
        'tc',
        'qdisc',
        'add',
        'dev',
        v,
        'root',
        'tbf',
        'rate',
        rate,
        'burst',
        '256kb',
        'latency',
        '50ms',
      ])
  }
  return {
    dir,
    nsA,
    nsB,
    ipA,
    ipB,
    identity: path.join(dir, 'id'),
    knownHosts,
    hostKeys,
    inA: (argv) => ['ip', 'netns', 'exec', nsA, ...argv],
    shape: async (rate) => {
      await tbf(nsA, vA, rate)
      await tbf(nsB, vB, rate)
    },
    linkDown: async () => {
      await sh(['ip', '-n', nsA, 'link', 'set', vA, 'down'])
    },
    linkUp: async () => {
      await sh(['ip', '-n', nsA, 'link', 'set', vA, 'up'])
    },
    linkBytes: async () => {
      const [link] = JSON.parse(await sh(['ip', '-n', nsA, '-s', '-j', 'link', 'show', vA])) as {
        stats64: { rx: { bytes: number }; tx: { bytes: number } }
      }[]
      return (link?.stats64.rx.bytes ?? 0) + (link?.stats64.tx.bytes ?? 0)
    },
    stop: async () => {
      for (const d of daemons) d.kill('SIGTERM')
      // Agents left behind by a failed test: every process still inside the namespaces.
      for (const ns of [nsA, nsB]) {
        const pids = await sh(['ip', 'netns', 'pids', ns]).catch(() => '')
        for (const pid of pids.split('\n').filter(Boolean)) {
          try {
            process.kill(Number(pid), 'SIGKILL')
          } catch {
            // already gone
          }
        }
      }
      await sh(['ip', 'netns', 'del', nsA]).catch(() => '')
      await sh(['ip', 'netns', 'del', nsB]).catch(() => '')
      await rm(dir, { recursive: true, force: true })
    },
  }
}
