import { describe, expect, it } from 'vitest'
import {
  formatBytes,
  formatDuration,
  parseDuration,
  parseRate,
  parseSize,
} from '../../../src/config/units.js'

describe('units', () => {
  it('sizes', () => {
    expect(parseSize('4096')).toBe(4096)
    expect(parseSize('64KiB')).toBe(65536)
    expect(parseSize('10GiB')).toBe(10 * 2 ** 30)
    expect(parseSize('1.5TB')).toBe(1.5e12)
    expect(parseSize('10 GiB')).toBe(10 * 2 ** 30)
    expect(parseSize('ten')).toBeUndefined()
    expect(parseSize('5XB')).toBeUndefined()
    expect(parseSize(-1)).toBeUndefined()
  })
  it('rates, bits and bytes', () => {
    expect(parseRate('100MiB/s')).toBe(100 * 2 ** 20)
    expect(parseRate('1Gbit/s')).toBe(125_000_000)
    expect(parseRate('500mbit')).toBe(62_500_000)
    expect(parseRate('unlimited')).toBe(Number.POSITIVE_INFINITY)
    expect(parseRate('0MiB/s')).toBeUndefined()
    expect(parseRate('fast')).toBeUndefined()
  })
  it('durations', () => {
    expect(parseDuration('30s')).toBe(30_000)
    expect(parseDuration('1h30m')).toBe(5_400_000)
    expect(parseDuration('250ms')).toBe(250)
    expect(parseDuration('2')).toBe(2000)
    expect(parseDuration(1.5)).toBe(1500)
    expect(parseDuration('10 sec')).toBeUndefined()
    expect(parseDuration('5x')).toBeUndefined()
    expect(parseDuration('')).toBeUndefined()
  })
  it('formats', () => {
    expect(formatBytes(1536)).toBe('1.50 KiB')
    expect(formatBytes(12)).toBe('12 B')
    expect(formatDuration(340)).toBe('340 ms')
    expect(formatDuration(1250)).toBe('1.25 s')
    expect(formatDuration(125_000)).toBe('2m05s')
  })
})
