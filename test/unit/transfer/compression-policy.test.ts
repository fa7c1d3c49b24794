import { describe, expect, it } from 'vitest'
import { CompressionPolicy } from '../../../src/transfer/compression-policy.js'

const MiB = 1 << 20
/** A simulated sender: per level, CPU ms per MiB and output ratio; the link moves `linkMBps`. */
function simulate(
  p: CompressionPolicy,
  segments: number,
  model: { cpuMs: Record<number, number>; ratio: Record<number, number>; linkMiBps: number },
) {
  const used: number[] = []
  for (let i = 0; i < segments; i++) {
    const l = p.level
    used.push(l)
    const wire = MiB * (model.ratio[l] ?? 1)
    p.observe({
      rawBytes: MiB,
      wireBytes: wire,
      compressMs: model.cpuMs[l] ?? 0,
      waitMs: (wire / MiB / model.linkMiBps) * 1000,
    })
  }
  return used
}

const vmLike = { cpuMs: { 0: 0, 1: 1.5, 3: 3, 6: 9 }, ratio: { 0: 1, 1: 0.45, 3: 0.43, 6: 0.42 } }

describe('compression auto', () => {
  it('stays compressed on a slow link with compressible data', () => {
    const used = simulate(new CompressionPolicy('auto'), 400, { ...vmLike, linkMiBps: 12 })
    const tail = used.slice(-100)
    expect(tail.filter((l) => l >= 1).length).toBeGreaterThan(85)
  })

  it('backs off to raw when the link is faster than the CPU compresses', () => {
    const used = simulate(new CompressionPolicy('auto'), 400, { ...vmLike, linkMiBps: 2000 })
    expect(used.slice(-100).filter((l) => l === 0).length).toBeGreaterThan(85)
  })

  it('backs off to raw when the data does not compress', () => {
    const used = simulate(new CompressionPolicy('auto'), 400, {
      cpuMs: { 0: 0, 1: 1.2, 3: 2.5 },
      ratio: { 0: 1, 1: 1, 3: 1 },
      linkMiBps: 12,
    })
    expect(used.slice(-100).filter((l) => l === 0).length).toBeGreaterThan(85)
  })

  it('a fixed level never changes', () => {
    const p = new CompressionPolicy(3)
    expect(new Set(simulate(p, 100, { ...vmLike, linkMiBps: 2000 }))).toEqual(new Set([3]))
  })
})
