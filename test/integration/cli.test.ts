/** The CLI as operators use it: exit codes, messages, status --json, hooks, rollback, locks, hold + cutover. */
import { existsSync, readFileSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { EXIT } from '../../src/cli/exit-codes.js'
import {
  runUntilHolding,
  type Scenario,
  scenario,
  sha256File,
  snapferry,
  snapferrySpawn,
} from '../helpers/cli.js'

const MiB = 1 << 20
const converge = (
  extra = '',
) => `convergence: { targetDowntime: 1m, minRounds: 1, roundInterval: 0s, whenConverged: cutover }
${extra}`

let s: Scenario | undefined
afterEach(async () => {
  await s?.cleanup()
  s = undefined
})

describe('snapferry validate', () => {
  it('exit 0 and a one-line summary for a good pipeline', async () => {
    const r = await snapferry(['validate', 'examples/demo/pipeline.yaml', 'pipelines/raw-image-move.yaml'])
    expect(r.code).toBe(EXIT.OK)
    expect(r.stdout).toContain(
      "ok: examples/demo/pipeline.yaml: pipeline 'demo', 1 volume (disk: file→file); target downtime 5.00 s",
    )
    expect(r.stdout.split('\n').filter(Boolean)).toHaveLength(2)
  })

  it('exit 2 and the located error for a bad one', async () => {
    const r = await snapferry(['validate', 'test/fixtures/invalid-pipelines/unknown-driver.yaml'])
    expect(r.code).toBe(EXIT.USAGE)
    expect(r.stderr).toBe(
      "error CONFIG_INVALID: invalid pipeline (1 problem) in test/fixtures/invalid-pipelines/unknown-driver.yaml\ntest/fixtures/invalid-pipelines/unknown-driver.yaml:7:15: volumes[0].source.driver: unknown driver 'rdb' — expected one of: file, rbd, cinder\n  hint: fix the keys shown; `snapferry validate FILE` re-checks, schema/pipeline.schema.json gives editors completion\n",
    )
  })

  it('exit 2 for a missing file and for a bad command line', async () => {
    expect((await snapferry(['run', '/nonexistent/p.yaml'])).code).toBe(EXIT.USAGE)
    expect((await snapferry(['frobnicate'])).code).toBe(EXIT.USAGE)
  })
})

describe('snapferry run / status', () => {
  it('moves a volume, cuts over, verifies; status --json tells the story', async () => {
    s = await scenario({ size: 8 * MiB, extra: converge() })
    await s.scribble(1, 30)
    const r = await snapferry(['run', s.pipeline])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(EXIT.OK)
    expect(r.stdout).toMatch(/round 0 \(base\): .* on the wire/)
    expect(r.stdout).toMatch(/cutover done: downtime [\d.]+ (ms|s), predicted/)
    expect(await sha256File(s.dst)).toBe(await sha256File(s.src))
    const st = await snapferry(['status', '--json', s.pipeline])
    expect(st.code).toBe(EXIT.OK)
    const j = JSON.parse(st.stdout)
    expect(Object.keys(j).sort()).toEqual([
      'cutover',
      'lastError',
      'lastPrediction',
      'phase',
      'pipeline',
      'rounds',
      'running',
      'volumes',
    ])
    expect(j.phase).toBe('done')
    expect(j.running).toBeNull()
    expect(j.rounds.map((x: { kind: string }) => x.kind)).toEqual(['base', 'delta', 'delta'])
    expect(j.cutover.status).toBe('ok')
    expect(j.cutover.steps.map((x: { name: string; status: string }) => `${x.name}:${x.status}`)).toEqual([
      'final-delta:ok',
      'verify:ok',
    ])
    expect(j.volumes).toEqual([
      { name: 'disk', lastSnapshot: expect.stringMatching(/^snapferry-0002-/), rounds: 3 },
    ])
    const human = await snapferry(['status', s.pipeline])
    expect(human.stdout).toMatch(
      /^pipeline e2e: done\n {2}volume disk: 3 rounds, last snapshot snapferry-0002-/,
    )
  })

  it('verify: records compares block-hash records (file ↔ file, same block size), else every byte', async () => {
    s = await scenario({ size: 8 * MiB, extra: converge('cutover: { verify: records }') })
    await s.scribble(4, 30)
    const r = await snapferry(['run', s.pipeline])
    expect(r.code, r.stderr).toBe(EXIT.OK)
    const j = await s.journal()
    const verify = j.find((e) => e.type === 'cutover-step' && e.step === 'verify' && e.status === 'ok')
    expect(verify?.type === 'cutover-step' && verify.output).toMatch(
      /^disk: block-hash records of snapferry-0002-\S+ equal on both sides \(sha256 [0-9a-f]{64}, 8388608 bytes in 16384-byte blocks\)$/,
    )
    expect(await sha256File(s.dst)).toBe(await sha256File(s.src))
    const dry = await snapferry(['cutover', '--dry-run', s.pipeline])
    expect(dry.stdout).toContain('  verify: records — block-hash records (file ↔ file, same block size)')
  })

  it('exit 6 while another run holds the lock', async () => {
    s = await scenario({ size: MiB, extra: converge() })
    const { mkdir } = await import('node:fs/promises')
    await mkdir(s.stateDir, { recursive: true })
    const { hostname } = await import('node:os')
    await writeFile(
      path.join(s.stateDir, 'lock'),
      JSON.stringify({ pid: process.pid, host: hostname(), startedAt: 'now', command: 'run x' }),
    )
    const r = await snapferry(['run', s.pipeline])
    expect(r.code).toBe(EXIT.LOCKED)
    expect(r.stderr).toContain(
      `error PIPELINE_LOCKED: pipeline 'e2e' is busy: \`snapferry run x\` runs as pid ${process.pid}`,
    )
  })
})

describe('cutover runbook through the CLI', () => {
  it('a failing before hook: exit 4, rollback ran, source untouched, destination not promoted', async () => {
    s = await scenario({
      size: 4 * MiB,
      extra: converge(`cutover:
  before:
    - { name: stop-vm, run: 'echo stopping; exit 3' }
  after:
    - { name: start, run: 'touch promoted' , cwd: . }
  rollback:
    - { name: restart-source, run: 'echo "$SNAPFERRY_PHASE $SNAPFERRY_VOLUME_DISK_SOURCE" > rolled-back', cwd: . }`),
    })
    await s.scribble(2, 10)
    const before = await sha256File(s.src)
    const r = await snapferry(['run', s.pipeline])
    expect(r.code).toBe(EXIT.ROLLED_BACK)
    expect(r.stdout).toContain('failed  before:stop-vm')
    expect(r.stdout).toContain("before hook 'stop-vm' exited with status 3")
    expect(r.stdout).toContain('not-run final-delta')
    expect(r.stdout).toContain('ok      rollback:restart-source')
    expect(await sha256File(s.src)).toBe(before)
    expect(readFileSync(path.join(s.dir, 'rolled-back'), 'utf8')).toBe(`rollback ${s.src}\n`)
    expect(existsSync(path.join(s.dir, 'promoted'))).toBe(false)
    const j = JSON.parse((await snapferry(['status', '--json', s.pipeline])).stdout)
    expect(j.phase).toBe('rolled-back')
    expect(j.cutover.status).toBe('rolled-back')
  })

  it('a failing after hook: exit 5 and nothing rolled back', async () => {
    s = await scenario({
      size: 2 * MiB,
      extra: converge(`cutover:
  after:
    - { name: start, run: 'exit 1' }
  rollback:
    - { name: restart-source, run: 'touch rolled-back', cwd: . }`),
    })
    const r = await snapferry(['run', s.pipeline])
    expect(r.code).toBe(EXIT.CUTOVER_FAILED)
    expect(existsSync(path.join(s.dir, 'rolled-back'))).toBe(false)
    expect(await sha256File(s.dst)).toBe(await sha256File(s.src))
  })

  it('a hook that hangs is killed at its timeout', async () => {
    s = await scenario({
      size: MiB,
      extra: converge(`cutover:\n  before:\n    - { name: hang, run: 'sleep 30', timeout: 300ms }`),
    })
    const r = await snapferry(['run', s.pipeline])
    expect(r.code).toBe(EXIT.ROLLED_BACK)
    expect(r.stdout).toContain("before hook 'hang' timed out after 300 ms")
  })

  it('--dry-run prints the runbook and touches nothing; plan shows the volumes', async () => {
    s = await scenario({
      size: MiB,
      extra: converge(`cutover:\n  before:\n    - { name: stop, run: [virsh, shutdown, web01] }`),
    })
    const d = await snapferry(['cutover', '--dry-run', s.pipeline])
    expect(d.code).toBe(EXIT.OK)
    expect(d.stdout).toContain('  before:stop: ["virsh","shutdown","web01"] (timeout 1m00s)')
    expect(d.stdout).toContain('  final-delta: snapshot disk and ship the last delta')
    const p = await snapferry(['plan', s.pipeline])
    expect(p.code).toBe(EXIT.OK)
    expect(p.stdout).toContain('  next: base (up to 1.00 MiB; only non-zero blocks travel)')
    expect(existsSync(s.dst)).toBe(false)
  })

  it('whenConverged: hold keeps the copy warm until `snapferry cutover`', async () => {
    s = await scenario({
      size: 4 * MiB,
      extra: 'convergence: { targetDowntime: 1m, minRounds: 1, whenConverged: hold, holdInterval: 300ms }',
    })
    const { exited, output } = await runUntilHolding(s.pipeline)
    expect(output()).toContain('converged: holding the destination warm')
    await s.scribble(3, 20)
    const c = await snapferry(['cutover', s.pipeline])
    expect(c.stdout).toContain('asked the running snapferry')
    expect(c.stdout).toMatch(/cutover ok: downtime/)
    expect(c.code).toBe(EXIT.OK)
    expect(await exited).toBe(0)
    expect(await sha256File(s.dst)).toBe(await sha256File(s.src))
  })
})

describe('interrupting and aborting', () => {
  it('Ctrl-C stops cleanly with exit 130, and the next run resumes to an exact copy', async () => {
    s = await scenario({ size: 24 * MiB, extra: converge('transport: { bandwidth: 4MiB/s }') })
    await s.scribble(7, 100)
    const run = snapferrySpawn(['run', s.pipeline])
    let err = ''
    run.stderr.on('data', (b: Buffer) => {
      err += b.toString()
    })
    for (let i = 0; i < 200 && !(await s.journal()).some((e) => e.type === 'transfer-started'); i++)
      await new Promise((r) => setTimeout(r, 25))
    await new Promise((r) => setTimeout(r, 300))
    run.kill('SIGINT')
    const code = await new Promise<number | null>((r) => run.on('exit', (c) => r(c)))
    expect(code).toBe(EXIT.INTERRUPTED)
    expect(err).toContain('SIGINT: stopping after cleaning up')
    expect(err).toContain('error ABORTED: the run was interrupted')
    expect(JSON.parse((await snapferry(['status', '--json', s.pipeline])).stdout).phase).toBe('aborted')
    const again = await snapferry(['run', s.pipeline])
    expect(again.code, again.stderr).toBe(EXIT.OK)
    expect(await sha256File(s.dst)).toBe(await sha256File(s.src))
  })

  it('abort --clean-snapshots stops a holding run and removes every snapferry snapshot on both sides', async () => {
    s = await scenario({
      size: 4 * MiB,
      extra: 'convergence: { targetDowntime: 1m, minRounds: 1, whenConverged: hold, holdInterval: 200ms }',
    })
    await s.scribble(8, 10)
    const { exited } = await runUntilHolding(s.pipeline)
    const a = await snapferry(['abort', '--clean-snapshots', s.pipeline])
    expect(a.code, a.stderr).toBe(EXIT.OK)
    expect(a.stdout).toMatch(/^stopping snapferry pid \d+ \(run /)
    expect(a.stdout).toMatch(/removed source snapshot snapferry-\d{4}-\S+ of volume disk/)
    expect(a.stdout).toMatch(/removed destination snapshot snapferry-\d{4}-\S+ of volume disk/)
    expect(await exited).toBe(EXIT.INTERRUPTED)
    const { readdir } = await import('node:fs/promises')
    expect((await readdir(`${s.src}.snapferry`)).filter((f) => f.startsWith('snapferry-'))).toEqual([])
    expect((await readdir(`${s.dst}.snapferry`)).filter((f) => f.startsWith('snapferry-'))).toEqual([])
    expect(JSON.parse((await snapferry(['status', '--json', s.pipeline])).stdout).phase).toBe('aborted')
  })
})
