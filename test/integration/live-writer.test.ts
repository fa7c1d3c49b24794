/** Under a live writer: convergence, cutover with the writer stopped by the before hook, exact copy; and a stall. */
import { spawn } from 'node:child_process'
import path from 'node:path'
import { afterEach, expect, it } from 'vitest'
import { EXIT } from '../../src/cli/exit-codes.js'
import { REPO_ROOT } from '../helpers/built.js'
import { type Scenario, scenario, sha256File, snapferry } from '../helpers/cli.js'

const MiB = 1 << 20
const WRITER = path.join(REPO_ROOT, 'dist/examples/demo/live-writer.js')
const STOP = path.join(REPO_ROOT, 'dist/examples/demo/stop-writer.js')

let s: Scenario | undefined
let writer: ReturnType<typeof spawn> | undefined
afterEach(async () => {
  writer?.kill('SIGKILL')
  await s?.cleanup()
  s = undefined
})

async function startWriter(sc: Scenario, rate: number) {
  writer = spawn(process.execPath, [WRITER, sc.src, String(rate), path.join(sc.dir, 'writer.pid')], {
    stdio: 'ignore',
  })
  const { existsSync } = await import('node:fs')
  for (let i = 0; i < 100 && !existsSync(path.join(sc.dir, 'writer.pid')); i++)
    await new Promise((r) => setTimeout(r, 20))
}

const stopHook = (dir: string) => `cutover:
  before:
    - { name: stop-writer, run: [${JSON.stringify(process.execPath)}, ${JSON.stringify(STOP)}, ${JSON.stringify(path.join(dir, 'writer.pid'))}] }`

it('converges under a live writer, stops it in the before hook, and the copy is exact', async () => {
  s = await scenario({ size: 96 * MiB, blockSize: '4KiB' })
  await s.scribble(9, 200)
  const { appendFile } = await import('node:fs/promises')
  await appendFile(
    s.pipeline,
    `convergence: { targetDowntime: 3s, minRounds: 3, roundInterval: 300ms, whenConverged: cutover }\n${stopHook(s.dir)}\n`,
  )
  await startWriter(s, 1 * MiB)
  const r = await snapferry(['run', s.pipeline])
  expect(r.code, r.stderr).toBe(EXIT.OK)
  expect(r.stdout).toMatch(/→ converged \(predicted window/)
  expect(r.stdout).toContain('ok      before:stop-writer')
  expect(r.stdout).toContain('ok      verify')
  expect(await sha256File(s.dst)).toBe(await sha256File(s.src))
  const j = await s.journal()
  const deltas = j.filter((e) => e.type === 'round-completed' && e.stats.fromSnap !== null)
  expect(deltas.length).toBeGreaterThanOrEqual(4) // 3 warm rounds + the final one
  // The writer really was writing during the warm rounds.
  expect(deltas.slice(0, 3).every((e) => e.type === 'round-completed' && e.stats.dataBytes > 0)).toBe(true)
}, 120_000)

it('a workload that outruns the link: exit 3 with the numbers; onStall: cutover cuts over anyway', async () => {
  s = await scenario({ size: 12 * MiB, blockSize: '64KiB' })
  const { appendFile, writeFile, readFile } = await import('node:fs/promises')
  const base = await readFile(s.pipeline, 'utf8')
  await appendFile(
    s.pipeline,
    'transport: { bandwidth: 4MiB/s }\nconvergence: { targetDowntime: 100ms, stallRounds: 2, maxRounds: 8, onStall: fail, whenConverged: cutover }\n',
  )
  await startWriter(s, 3 * MiB) // 4 KiB writes into 64 KiB blocks: ~16x more to ship than written
  const r = await snapferry(['run', s.pipeline])
  expect(r.code).toBe(EXIT.NOT_CONVERGED)
  expect(r.stderr).toMatch(
    /^error (CONVERGENCE_STALLED: not converging: deltas stopped shrinking: (the last 2 rounds shipped [\d.]+ MiB, [\d.]+ MiB|the next would be ~[\d.]+ MiB after the last round shipped [\d.]+ MiB); the workload dirties [\d.]+ MiB\/s and the rounds drain [\d.]+ MiB\/s|MAX_ROUNDS_REACHED: not converging: reached maxRounds \(8\))/,
  )
  expect(r.stderr).toContain('hint: raise the bandwidth limit, slow the workload')

  await writeFile(
    s.pipeline,
    `${base}transport: { bandwidth: 4MiB/s }\nconvergence: { targetDowntime: 100ms, stallRounds: 2, maxRounds: 8, onStall: cutover, whenConverged: cutover }\n${stopHook(s.dir)}\n`,
  )
  const again = await snapferry(['run', s.pipeline])
  expect(again.code, again.stderr).toBe(EXIT.OK)
  expect(again.stdout).toContain(
    'not converging; cutting over anyway as the pipeline says (onStall: cutover)',
  )
  expect(await sha256File(s.dst)).toBe(await sha256File(s.src))
}, 180_000)
