/** Whole pipelines on two real clusters through the CLI: three live images converge and cut over; file ↔ rbd moves. */
import { type ChildProcess, spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { EXIT } from '../../src/cli/exit-codes.js'
import { readJournal } from '../../src/state/journal.js'
import { REPO_ROOT } from '../helpers/built.js'
import { CEPH_SKIP_REASON, type Cluster, startClusters } from '../helpers/ceph.js'
import { snapferry } from '../helpers/cli.js'
import { mulberry32, randInt, randomBytes } from '../helpers/random.js'
import { rbdWrite } from '../helpers/rbd-poke.js'

const MiB = 1 << 20
let A: Cluster
let B: Cluster
let stop = async () => {}
let dir = ''

beforeAll(async () => {
  if (CEPH_SKIP_REASON) return
  const c = await startClusters(2)
  ;[A, B] = c.clusters as [Cluster, Cluster]
  stop = c.stop
  dir = await mkdtemp(path.join(tmpdir(), 'sf-cephpipe-'))
}, 180_000)
afterAll(async () => {
  await stop()
  if (dir) await rm(dir, { recursive: true, force: true })
}, 60_000)

async function exportSha(c: Cluster, spec: string): Promise<string> {
  const h = createHash('sha256')
  await new Promise<void>((resolve, reject) => {
    const p = spawn('rbd', ['--conf', c.conf, 'export', '--no-progress', spec, '-'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    p.stdout.on('data', (b: Buffer) => h.update(b))
    p.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`rbd export ${spec}: ${code}`))))
  })
  return h.digest('hex')
}

const rbdEp = (c: Cluster, image: string) =>
  `{ driver: rbd, pool: rbd, image: ${image}, conf: ${c.conf}, timeout: 30s }`

/** The live writer (a stand-in VM) on A's image at 1 MiB/s, once it wrote its pid file. */
async function startWriter(image: string, pid: string): Promise<ChildProcess> {
  const writer = spawn(
    '/usr/bin/python3',
    [path.join(REPO_ROOT, 'examples/lib/rbd-live-writer.py'), A.conf, 'rbd', image, String(MiB), pid],
    { stdio: 'ignore' },
  )
  for (let i = 0; i < 200 && !existsSync(pid); i++) await new Promise((r) => setTimeout(r, 50))
  return writer
}

const describeCeph = CEPH_SKIP_REASON ? describe.skip : describe

describeCeph('pipelines on two clusters', () => {
  it('three images, one written live, converge and cut over; downtime reported; all byte-identical', async () => {
    const rnd = mulberry32(21)
    for (const name of ['vm-boot', 'vm-data', 'vm-logs']) {
      await A.rbd('create', '--size', '48M', `rbd/${name}`)
      for (let w = 0; w < 12; w++)
        await rbdWrite(
          A,
          `rbd/${name}`,
          randInt(rnd, 0, 47 * MiB),
          randomBytes(rnd, randInt(rnd, 1, 400_000)),
        )
    }
    const pid = path.join(dir, 'writer.pid')
    const writer = await startWriter('vm-data', pid)
    const file = path.join(dir, 'three.yaml')
    await writeFile(
      file,
      `apiVersion: snapferry/v1
kind: Pipeline
name: three-volumes
volumes:
  - { name: boot, source: ${rbdEp(A, 'vm-boot')}, destination: ${rbdEp(B, 'vm-boot')} }
  - { name: data, source: ${rbdEp(A, 'vm-data')}, destination: ${rbdEp(B, 'vm-data')} }
  - { name: logs, source: ${rbdEp(A, 'vm-logs')}, destination: ${rbdEp(B, 'vm-logs')} }
concurrency: 3
convergence: { targetDowntime: 10s, minRounds: 2, roundInterval: 500ms, whenConverged: cutover }
cutover:
  before:
    - name: stop-vm
      run: 'p=$(cat ${pid}); kill $p; while kill -0 $p 2>/dev/null; do sleep 0.05; done'
  verify: records
stateDir: ${path.join(dir, 'state-three')}
`,
    )
    try {
      const r = await snapferry(['run', file], {}, 240_000)
      expect(r.code, r.stderr).toBe(EXIT.OK)
      expect(r.stdout).toMatch(/cutover done: downtime [\d.]+ (ms|s), predicted [\d.]+ (ms|s)/)
      expect(r.stdout).toContain('ok      before:stop-vm')
      expect(r.stdout).toContain('ok      verify')
      // rbd ↔ rbd `records`: the chain of verified deltas and the final snapshot on both sides, no full read.
      const verify = (await readJournal(path.join(dir, 'state-three'))).find(
        (e) => e.type === 'cutover-step' && e.step === 'verify' && e.status === 'ok',
      ) as { output?: string } | undefined
      for (const v of ['boot', 'data', 'logs'])
        expect(verify?.output).toMatch(
          new RegExp(
            `${v}: snapferry-\\S+ on both sides \\(\\d+ bytes\\); every delta's stream digest matched`,
          ),
        )
    } finally {
      writer.kill('SIGKILL')
    }
    const st = JSON.parse((await snapferry(['status', '--json', file])).stdout)
    expect(st.cutover.status).toBe('ok')
    expect(st.cutover.downtimeMs).toBeGreaterThan(0)
    for (const v of ['boot', 'data', 'logs']) {
      const snap = st.cutover.finalSnapshot[v] as string
      expect(snap).toMatch(/^snapferry-/)
      const image = `rbd/vm-${v}`
      expect(await exportSha(B, `${image}@${snap}`), v).toBe(await exportSha(A, `${image}@${snap}`))
      expect(await exportSha(B, image), `${v} head`).toBe(await exportSha(A, image))
    }
  }, 300_000)

  it('behind agents: pending measured while the destination finishes, retention after each snapshot; identical', async () => {
    await A.rbd('create', '--size', '32M', 'rbd/vm-live')
    await rbdWrite(A, 'rbd/vm-live', 0, randomBytes(mulberry32(5), 4 * MiB))
    const pid = path.join(dir, 'writer-live.pid')
    const writer = await startWriter('vm-live', pid)
    const file = path.join(dir, 'agents.yaml')
    const ep = (c: Cluster) =>
      `{ driver: rbd, host: local, pool: rbd, image: vm-live, conf: ${c.conf}, timeout: 30s }`
    await writeFile(
      file,
      `apiVersion: snapferry/v1
kind: Pipeline
name: behind-agents
volumes:
  - { name: live, source: ${ep(A)}, destination: ${ep(B)} }
convergence: { targetDowntime: 1m, minRounds: 3, whenConverged: cutover }
snapshots: { keep: 1 }
cutover:
  before:
    - name: stop-vm
      run: 'p=$(cat ${pid}); kill $p; while kill -0 $p 2>/dev/null; do sleep 0.05; done'
stateDir: ${path.join(dir, 'state-agents')}
`,
    )
    try {
      const r = await snapferry(['run', file], {}, 240_000)
      expect(r.code, r.stderr).toBe(EXIT.OK)
    } finally {
      writer.kill('SIGKILL')
    }
    const j = await readJournal(path.join(dir, 'state-agents'))
    // The loop's predictions used measurements started when the round's export ended (a 32 MiB image
    // answers in milliseconds; one over PENDING_WAIT_MS would leave the rest to the model), and the
    // writer's changes since the snapshot are in them.
    const predictions = j.filter((e) => e.type === 'prediction')
    expect(predictions.length).toBeGreaterThanOrEqual(4)
    const measured = predictions.filter((p) => p.type === 'prediction' && p.pending !== undefined)
    expect(measured.length).toBeGreaterThanOrEqual(3)
    for (const p of measured) {
      expect(p.type === 'prediction' && p.pending?.early).toEqual(['live'])
      expect(p.type === 'prediction' && p.pending?.ageMs.live).toBeGreaterThanOrEqual(0)
      if (p.type === 'prediction' && p.round > 0) expect(p.pending?.bytes.live).toBeGreaterThan(0)
    }
    // Warm rounds: no source snapshot is removed while the next one is being created.
    let creating = false
    let removedDuringRounds = 0
    for (const e of j) {
      if (e.type === 'snapshot-creating') creating = true
      if (e.type === 'snapshot-created') creating = false
      if (e.type === 'snapshot-deleting' && e.side === 'source') {
        expect(creating, `removal of ${e.name} while a snapshot was being created`).toBe(false)
        removedDuringRounds++
      }
    }
    expect(removedDuringRounds).toBeGreaterThan(0)
    const st = JSON.parse((await snapferry(['status', '--json', file])).stdout)
    const snap = st.cutover.finalSnapshot.live as string
    expect(await exportSha(B, `rbd/vm-live@${snap}`)).toBe(await exportSha(A, `rbd/vm-live@${snap}`))
    expect(await exportSha(B, 'rbd/vm-live')).toBe(await exportSha(A, 'rbd/vm-live'))
  }, 300_000)

  it('moves a raw file into an RBD image and an RBD image out to a raw file', async () => {
    const raw = path.join(dir, 'in.img')
    await writeFile(raw, '')
    await truncate(raw, 24 * MiB)
    const { open } = await import('node:fs/promises')
    const fh = await open(raw, 'r+')
    const rnd = mulberry32(4)
    for (let i = 0; i < 30; i++)
      await fh.write(randomBytes(rnd, 200_000), 0, 200_000, randInt(rnd, 0, 23 * MiB))
    await fh.close()
    await A.rbd('create', '--size', '20M', 'rbd/outbound')
    for (let w = 0; w < 10; w++)
      await rbdWrite(A, 'rbd/outbound', randInt(rnd, 0, 19 * MiB), randomBytes(rnd, 300_000))
    const out = path.join(dir, 'out.img')
    const file = path.join(dir, 'mixed.yaml')
    await writeFile(
      file,
      `apiVersion: snapferry/v1
kind: Pipeline
name: mixed
volumes:
  - { name: file-to-rbd, source: { driver: file, path: ${raw} }, destination: ${rbdEp(B, 'inbound')} }
  - { name: rbd-to-file, source: ${rbdEp(A, 'outbound')}, destination: { driver: file, path: ${out} } }
convergence: { targetDowntime: 1m, minRounds: 1, whenConverged: cutover }
stateDir: ${path.join(dir, 'state-mixed')}
`,
    )
    const r = await snapferry(['run', file], {}, 240_000)
    expect(r.code, r.stderr).toBe(EXIT.OK)
    const rawSha = createHash('sha256')
      .update(await readFile(raw))
      .digest('hex')
    expect(await exportSha(B, 'rbd/inbound')).toBe(rawSha)
    expect(
      createHash('sha256')
        .update(await readFile(out))
        .digest('hex'),
    ).toBe(await exportSha(A, 'rbd/outbound'))
  }, 300_000)
})
