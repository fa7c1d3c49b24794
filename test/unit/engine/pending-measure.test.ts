import { describe, expect, it } from 'vitest'
import { RemoteVolumeDriver } from '../../../src/agent-protocol/remote-volume-driver.js'
import type { EngineContext } from '../../../src/engine/engine-context.js'
import { type EarlyPending, measurePending } from '../../../src/engine/pending-measure.js'
import type { VolumeState } from '../../../src/engine/reconcile.js'

/** A volume behind an agent whose estimate answers 777 bytes (recording the calls); snapshot 5 s ago. */
function setup(last: string) {
  const calls: (string | undefined)[] = []
  const d = Object.create(RemoteVolumeDriver.prototype) as RemoteVolumeDriver
  Object.defineProperty(d, 'estimate', {
    value: async (from: string | undefined) => {
      calls.push(from)
      return 777
    },
  })
  const ctx = { signal: new AbortController().signal } as unknown as EngineContext
  const s = {
    pair: { name: 'vm', source: d },
    last,
    lastSnapshotAt: Date.now() - 5000,
  } as unknown as VolumeState
  return { ctx, s, calls }
}

const early = (snapshot: string, bytes: number, agoMs: number): EarlyPending => ({
  snapshot,
  startedAt: Date.now() - agoMs,
  bytes: Promise.resolve(bytes),
})

describe('pending bytes for the predictor', () => {
  it("uses the measurement started when the round's export ended: its age and its time after the snapshot", async () => {
    const { ctx, s, calls } = setup('s3')
    const m = new Map([['vm', early('s3', 4096, 120)]])
    const p = await measurePending(ctx, [s], m)
    expect(p?.bytes).toEqual({ vm: 4096 })
    expect(p?.early).toEqual(['vm'])
    expect(p?.ageMs.vm).toBeGreaterThanOrEqual(120)
    expect(p?.sinceSnapshotMs.vm).toBeGreaterThanOrEqual(4870)
    expect(p?.sinceSnapshotMs.vm).toBeLessThan(4900)
    expect(calls).toEqual([])
    expect(m.size).toBe(0)
  })

  it('measures now when the early measurement was for another snapshot (a retried round)', async () => {
    const { ctx, s, calls } = setup('s4')
    const p = await measurePending(ctx, [s], new Map([['vm', early('s3', 4096, 0)]]))
    expect(p?.bytes).toEqual({ vm: 777 })
    expect(p?.early).toEqual([])
    expect(p?.sinceSnapshotMs.vm).toBeGreaterThanOrEqual(5000)
    expect(calls).toEqual(['s4'])
  })
})
