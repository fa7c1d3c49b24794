/** zod schemas for unit-bearing fields: they accept "64KiB", "30s", "100MiB/s" and yield numbers. */
import { z } from 'zod'
import {
  DURATION_EXAMPLES,
  parseDuration,
  parseRate,
  parseSize,
  RATE_EXAMPLES,
  SIZE_EXAMPLES,
} from './units.js'

const text = z.union([z.string(), z.number()])

export const sizeSchema = text.transform((v, ctx) => {
  const n = parseSize(v)
  if (n === undefined) {
    ctx.addIssue({ code: 'custom', message: `'${v}' is not a size — expected e.g. ${SIZE_EXAMPLES}` })
    return z.NEVER
  }
  return n
})

/** Bytes per second; Infinity for "unlimited". */
export const rateSchema = text.transform((v, ctx) => {
  const n = parseRate(v)
  if (n === undefined) {
    ctx.addIssue({ code: 'custom', message: `'${v}' is not a rate — expected e.g. ${RATE_EXAMPLES}` })
    return z.NEVER
  }
  return n
})

/** Milliseconds. */
export const durationSchema = text.transform((v, ctx) => {
  const n = parseDuration(v)
  if (n === undefined) {
    ctx.addIssue({ code: 'custom', message: `'${v}' is not a duration — expected e.g. ${DURATION_EXAMPLES}` })
    return z.NEVER
  }
  return n
})

/** A block size: a power of two between 4 KiB and 16 MiB. */
export const blockSizeSchema = sizeSchema.refine((n) => n >= 4096 && n <= 16 << 20 && (n & (n - 1)) === 0, {
  message: 'block size must be a power of two between 4KiB and 16MiB (e.g. 64KiB)',
})
