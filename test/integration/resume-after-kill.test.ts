/**
 * kill -9 at every journaled step, then run again: the destination always ends byte-identical to the
 * source, and a base is never shipped again once a shared snapshot exists.
 */
import { existsSync } from 'node:fs'
import path from 'node:path'
import { expect, it } from 'vitest'
import { EXIT } from '../../src/cli/exit-codes.js'
import type { JournalEntry } from '../../src/state/journal-entries.js'
import { scenario, sha256File, snapferry, snapferrySpawn } from '../helpers/cli.js'

const MiB = 1 << 20
const PIPELINE = `convergence: { targetDowntime: 1m, minRounds: 2, whenConverged: cutover }
cutover:
  before: [ { name: stop, run: 'true' } ]
  after: [ { name: start, run: 'true' } ]
snapshots: { keep: 2 }`

function assertBaseOnce(j: readonly JournalEntry[], label: string) {
  const baseDone = j.findIndex((e) => e.type === 'round-completed' && e.stats.fromSnap === null)
  expect(baseDone, label).toBeGreaterThanOrEqual(0)
  const laterBases = j.slice(baseDone + 1).filter((e) => e.type === 'transfer-started' && e.from === null)
  expect(laterBases, `${label}: a base was shipped again after a shared snapshot existed`).toEqual([])
  expect(
    j.filter((e) => e.type === 'round-completed' && e.stats.fromSnap === null),
    label,
  ).toHaveLength(1)
}

it('resumes correctly after a kill at every journaled step', async () => {
  // Reference run: how many journal entries does a whole move write?
  const ref = await scenario({ size: 4 * MiB, extra: PIPELINE })
  await ref.scribble(11, 20)
  expect((await snapferry(['run', ref.pipeline])).code).toBe(EXIT.OK)
  const total = (await ref.journal()).length
  await ref.cleanup()
  expect(total).toBeGreaterThan(20)

  for (let k = 1; k < total; k++) {
    const s = await scenario({ size: 4 * MiB, extra: PIPELINE })
    try {
      await s.scribble(11, 20)
      const crashed = await snapferry(['run', s.pipeline], { SNAPFERRY_CRASH_AT_JOURNAL_SEQ: String(k) })
      expect(crashed.code, `kill at entry ${k}`).toBeNull() // killed by SIGKILL
      const at = (await s.journal()).at(-1)
      await s.scribble(100 + k, 5) // the workload went on while snapferry was down
      const again = await snapferry(['run', s.pipeline])
      expect(again.code, `rerun after kill at entry ${k} (${at?.type}): ${again.stderr}`).toBe(EXIT.OK)
      expect(await sha256File(s.dst), `kill at entry ${k} (${at?.type})`).toBe(await sha256File(s.src))
      assertBaseOnce(await s.journal(), `kill at entry ${k} (${at?.type})`)
    } finally {
      await s.cleanup()
    }
  }
}, 600_000)

it('a kill in the middle of a transfer is repaired on the next run', async () => {
  const s = await scenario({ size: 48 * MiB, extra: `${PIPELINE}\ntransport: { bandwidth: 16MiB/s }` })
  try {
    await s.scribble(5, 300)
    // Ship the base and stop; then change the source and kill the next run mid-delta.
    const run = snapferrySpawn(['run', s.pipeline])
    const marker = path.join(s.dir, 'dst.img.snapferry', 'applying.json')
    let seen = false
    for (let i = 0; i < 400 && !seen; i++) {
      await new Promise((r) => setTimeout(r, 25))
      seen = existsSync(marker)
    }
    expect(seen).toBe(true)
    await new Promise((r) => setTimeout(r, 600)) // well inside the ~2 s base transfer
    run.kill('SIGKILL')
    await new Promise((r) => run.on('exit', r))
    const again = await snapferry(['run', s.pipeline])
    expect(again.code, again.stderr).toBe(EXIT.OK)
    expect(again.stdout).toContain('volume disk: no shared snapshot: starting with a base')
    expect(await sha256File(s.dst)).toBe(await sha256File(s.src))
    assertBaseOnce(await s.journal(), 'mid-base kill')

    // Now a kill in the middle of a delta: the next run must re-send the half-applied extents.
    await s.scribble(6, 400)
    const { writeFile } = await import('node:fs/promises')
    await writeFile(
      s.pipeline,
      (await import('node:fs')).readFileSync(s.pipeline, 'utf8').replace('minRounds: 2', 'minRounds: 3'),
    )
    const run2 = snapferrySpawn(['run', s.pipeline])
    const before = (await s.journal()).length
    for (let i = 0; i < 400; i++) {
      await new Promise((r) => setTimeout(r, 25))
      const j = (await s.journal()).slice(before)
      if (j.some((e) => e.type === 'transfer-started' && e.from !== null)) break
    }
    // Kill once the destination is applying (its marker is set), not after a fixed delay: on a loaded
    // machine the first bytes can take longer than any delay, and a kill before the apply leaves
    // nothing to repair.
    let applying = false
    for (let i = 0; i < 400 && !applying; i++) {
      await new Promise((r) => setTimeout(r, 10))
      applying = existsSync(marker)
    }
    expect(applying).toBe(true)
    await new Promise((r) => setTimeout(r, 100))
    run2.kill('SIGKILL')
    await new Promise((r) => run2.on('exit', r))
    const third = await snapferry(['run', s.pipeline])
    expect(third.code, third.stderr).toBe(EXIT.OK)
    expect(third.stdout).toMatch(
      /volume disk: resuming from snapferry-\d+-\S+ \(repairing \d+ interrupted extents\)/,
    )
    const reconciled = (await s.journal()).filter((e) => e.type === 'reconciled').at(-1)
    expect(reconciled?.type === 'reconciled' && reconciled.repair).toBe(true)
    expect(await sha256File(s.dst)).toBe(await sha256File(s.src))
    assertBaseOnce(await s.journal(), 'mid-delta kill')
  } finally {
    await s.cleanup()
  }
}, 120_000)
