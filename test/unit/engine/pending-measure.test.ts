import { describe, expect, it } from 'vitest'
import { RemoteVolumeDriver } from '../../../src/agent-protocol/remote-volume-driver.js'
import type { EngineContext } from '../../../src/engine/engine-context.js'
import { type EarlyPending, measurePending, PENDING_WAIT_MS } from '../../../src/engine/pending-measure.js'
import type { VolumeState } from '../../../src/engine/reconcile.js'

/** A source behind an agent whose estimate answers `bytes` (counting the calls). */
function source(bytes: number) {
  const calls: (string | undefined)[] = []
  const d = Object.create(RemoteVolumeDriver.prototype) as RemoteVolumeDriver
  Object.defineProperty(d, 'estimate', {
    value: async (from: string | undefined) => {
      calls.push(from)
      return bytes
    },
  })
  return { d, calls }
}

function setup(last: string) {
  const lines: string[] = []
  const ctx = {
    reporter: { line: (s: string) => lines.push(s), status: () => {} },
    signal: new AbortController().signal,
  } as unknown as EngineContext
  const src = source(777)
  const s = { pair: { name: 'vm', source: src.d }, last } as unknown as VolumeState
  return { ctx, s, lines, calls: src.calls }
}

const early = (snapshot: string, bytes: Promise<number | undefined>, agoMs = 0): EarlyPending => ({
  snapshot,
  startedAt: performance.now() - agoMs,
  bytes,
})

describe('pending bytes for the predictor', () => {
  it("uses the measurement started when the round's export ended, with its age", async () => {
    const { ctx, s, calls } = setup('s3')
    const loop = {
      early: new Map([['vm', early('s3', Promise.resolve(4096), 120)]]),
      tooSlow: new Set<string>(),
    }
    const p = await measurePending(ctx, [s], loop)
    expect(p?.bytes).toEqual({ vm: 4096 })
    expect(p?.early).toEqual(['vm'])
    expect(p?.ageMs.vm).toBeGreaterThanOrEqual(120)
    expect(calls).toEqual([])
    expect(loop.early.size).toBe(0)
  })

  it('measures now when the early measurement was for another snapshot (a retried round)', async () => {
    const { ctx, s, calls } = setup('s4')
    const loop = { early: new Map([['vm', early('s3', Promise.resolve(4096))]]), tooSlow: new Set<string>() }
    const p = await measurePending(ctx, [s], loop)
    expect(p?.bytes).toEqual({ vm: 777 })
    expect(p?.early).toEqual([])
    expect(calls).toEqual(['s4'])
  })

  it(`gives up on a measurement still running ${PENDING_WAIT_MS} ms after the round, and on that volume`, async () => {
    const { ctx, s, lines, calls } = setup('s3')
    const slow = new Promise<number>((r) => setTimeout(r, PENDING_WAIT_MS + 400, 4096))
    const loop = { early: new Map([['vm', early('s3', slow)]]), tooSlow: new Set<string>() }
    const t0 = performance.now()
    expect(await measurePending(ctx, [s], loop)).toBeUndefined()
    expect(performance.now() - t0).toBeLessThan(PENDING_WAIT_MS + 300)
    expect([...loop.tooSlow]).toEqual(['vm'])
    expect(lines).toEqual([
      `  volume vm: measuring what is pending took over ${PENDING_WAIT_MS} ms after the round; predicting the final delta from the dirty rate instead`,
    ])
    // Not measured again, not even late.
    expect(await measurePending(ctx, [s], loop)).toBeUndefined()
    expect(calls).toEqual([])
  })
})
