import { describe, expect, it } from 'vitest'
import type { SnapshotInfo } from '../../../src/drivers/volume-driver.js'
import { snapshotsToPrune } from '../../../src/replication/retention.js'
import type { JournalEntry } from '../../../src/state/journal-entries.js'
import { planResume, repairDecision } from '../../../src/state/resume-point.js'

const snap = (name: string, complete = true): SnapshotInfo => ({ name, complete, size: 1, createdAt: '' })
const n = (r: number) => `snapferry-${String(r).padStart(4, '0')}-20261121T000000000Z`

describe('resume point', () => {
  it('resumes from the newest snapshot both sides hold completely', () => {
    const p = planResume(
      'v',
      [snap(n(0)), snap(n(1)), snap(n(2))],
      [snap(n(0)), snap(n(1)), snap(n(2), false)],
      [],
    )
    expect(p.resumeFrom).toBe(n(1))
    expect(p.nextRound).toBe(2)
    expect(p.deleteOnSource).toEqual([n(2)])
    expect(p.deleteOnDestination).toEqual([n(2)])
  })

  it('ships a base when nothing is shared, and knows whether the unfinished base was ours', () => {
    const started = [
      {
        seq: 1,
        at: '',
        type: 'transfer-started',
        volume: 'v',
        round: 0,
        from: null,
        to: n(0),
        repairExtents: 0,
      },
    ] as JournalEntry[]
    const p = planResume('v', [snap(n(0), false)], [], started)
    expect(p.resumeFrom).toBeNull()
    expect(p.nextRound).toBe(0)
    expect(p.baseStartedByUs).toBe(true)
    expect(p.deleteOnSource).toEqual([n(0)])
    expect(planResume('other', [], [], started).baseStartedByUs).toBe(false)
  })

  it('never resumes from a snapshot the source no longer has', () => {
    const p = planResume('v', [snap(n(0))], [snap(n(0)), snap(n(1))], [])
    expect(p.resumeFrom).toBe(n(0))
    expect(p.deleteOnDestination).toEqual([n(1)])
  })

  it('orders by round number, not by text', () => {
    const p = planResume('v', [snap(n(9)), snap(n(10))], [snap(n(9)), snap(n(10))], [])
    expect(p.resumeFrom).toBe(n(10))
  })

  it('repairs interrupted applies, refuses foreign changes unless told', () => {
    expect(repairDecision({ matches: true }, false)).toBe('none')
    expect(repairDecision({ matches: false, reason: 'interrupted-apply', detail: '' }, false)).toBe('repair')
    expect(repairDecision({ matches: false, reason: 'modified', detail: '' }, false)).toBe('refuse')
    expect(repairDecision({ matches: false, reason: 'modified', detail: '' }, true)).toBe('repair')
  })
})

describe('retention', () => {
  it('keeps the newest N shared snapshots and never the base of the next delta', () => {
    const shared = [snap(n(3)), snap(n(1)), snap(n(2)), snap(n(0))]
    expect(snapshotsToPrune(shared, 2, n(3))).toEqual([n(0), n(1)])
    expect(snapshotsToPrune(shared, 1, n(2))).toEqual([n(0), n(1)])
    expect(snapshotsToPrune(shared, 0, n(3))).toEqual([n(0), n(1), n(2)])
  })
})
