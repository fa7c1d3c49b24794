import { describe, expect, it } from 'vitest'
import { type Clock, tokenBucket } from '../../../src/replication/rate-limiter.js'

/** A clock that only moves when someone sleeps: the limiter's arithmetic, without waiting. */
function fakeClock(): Clock & { slept: number } {
  let now = 0
  const c = {
    slept: 0,
    now: () => now,
    sleep: async (ms: number) => {
      now += ms
      c.slept += ms
    },
  }
  return c
}

describe('token bucket', () => {
  it('holds the average rate within 1 % over a long transfer, whatever the chunk sizes', async () => {
    for (const chunk of [4096, 65536, 1 << 20, 3 << 20]) {
      const clock = fakeClock()
      const rate = 12_500_000 // 100 Mbit/s
      const limiter = tokenBucket(rate, clock)
      let sent = 0
      while (sent < 1 << 30) {
        await limiter.take(chunk)
        sent += chunk
      }
      const achieved = sent / (clock.now() / 1000)
      expect(Math.abs(achieved - rate) / rate, `chunk ${chunk}`).toBeLessThan(0.01)
    }
  })

  it('is shared: two volumes together get the pipeline rate, not twice it', async () => {
    const clock = fakeClock()
    const limiter = tokenBucket(10_000_000, clock)
    const move = async () => {
      for (let i = 0; i < 200; i++) await limiter.take(1 << 20)
    }
    await Promise.all([move(), move()])
    const achieved = (400 * (1 << 20)) / (clock.now() / 1000)
    expect(Math.abs(achieved - 10_000_000) / 10_000_000).toBeLessThan(0.01)
  })
})
