/**
 * How fast each cluster's OSD served client writes during a run: the mean latency of its `op_w` from
 * two admin-socket samples. The same run on the same code drains 2× fewer extents per second at some
 * minutes than at others, with or without CPU steal; this says whether the OSD was the slower part.
 */
import type { OsdWriteSample } from '../lib/ceph-regions.js'

export interface OsdWrites {
  /** Client writes the OSD served during the run. */
  readonly writes: number
  /** Their mean latency (ms). */
  readonly meanLatencyMs: number
}

export function osdWritesBetween(
  a: OsdWriteSample | undefined,
  b: OsdWriteSample | undefined,
): OsdWrites | undefined {
  if (!a || !b || b.count <= a.count) return undefined
  const writes = b.count - a.count
  return { writes, meanLatencyMs: ((b.latencySumS - a.latencySumS) / writes) * 1000 }
}
