/** A token bucket shared by all volumes of a pipeline: holds the average rate, allows short bursts. */
import { abortableSleep } from './abortable-sleep.js'

export interface RateLimiter {
  /** Wait until `bytes` may be sent. */
  take(bytes: number, signal?: AbortSignal): Promise<void>
  readonly bytesPerSecond: number
}

export interface Clock {
  now(): number
  sleep(ms: number, signal?: AbortSignal): Promise<void>
}

export const realClock: Clock = {
  now: () => performance.now(),
  sleep: abortableSleep,
}

/** Burst: 100 ms worth of the rate (at least 1 MiB), so small rates still move whole chunks. */
export function tokenBucket(bytesPerSecond: number, clock: Clock = realClock): RateLimiter {
  const burst = Math.max(1 << 20, bytesPerSecond / 10)
  let tokens = burst
  let last = clock.now()
  let queue: Promise<void> = Promise.resolve()
  const refill = () => {
    const now = clock.now()
    tokens = Math.min(burst, tokens + ((now - last) / 1000) * bytesPerSecond)
    last = now
  }
  return {
    bytesPerSecond,
    take(bytes, signal) {
      // Serialize takers so that the average holds across concurrent volumes.
      const run = queue.then(async () => {
        refill()
        tokens -= bytes
        if (tokens < 0) await clock.sleep((-tokens / bytesPerSecond) * 1000, signal)
      })
      queue = run.catch(() => {})
      return run
    },
  }
}
