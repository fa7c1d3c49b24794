/** What one round of one volume measured: the predictor's only input besides the config. */

import type { ApplyWaits } from '../drivers/volume-driver.js'

export interface VolumeRoundStats {
  readonly volume: string
  readonly round: number
  readonly fromSnap: string | null
  readonly toSnap: string
  /** Wall-clock start of the round (ms since epoch) — the snapshot is taken right then. */
  readonly startedAt: number
  /** Time since the previous round's snapshot (the window in which the shipped changes were made). */
  readonly intervalMs: number | null
  readonly snapshotMs: number
  readonly exportMs: number
  readonly importMs: number
  /** Wall time of the whole transfer (export, relay and apply overlap). */
  readonly transferMs: number
  /** Time from snapshot start to the end of the apply. */
  readonly totalMs: number
  readonly scannedBytes: number
  readonly streamBytes: number
  readonly dataBytes: number
  readonly zeroBytes: number
  readonly extents: number
  readonly volumeSize: number
  /** Extents re-sent to repair a destination whose apply was interrupted. */
  readonly repairedExtents: number
  /** How the destination applied the delta when its driver had a choice (rbd: staged-file or stdin). */
  readonly applyMode?: string | undefined
  /** When each step of the destination's apply ended, ms after it began (see ImportResult.phasesMs). */
  readonly applyPhasesMs?: Readonly<Record<string, number>> | undefined
  /** A streamed apply's waits (ImportResult.waitsMs): for the delta's bytes, and for the destination. */
  readonly applyWaitsMs?: ApplyWaits | undefined
  /** The sending agent's waits: blocked by the link or receiver, and idle until the source's next bytes. */
  readonly sendWaitsMs?: { readonly forLink: number; readonly forSource: number } | undefined
  /** Bytes on the wire between agents (frames after compression, re-sent frames included). */
  readonly wireBytes?: number | undefined
  /** Times the transfer resumed after a dropped link or a refused damaged segment. */
  readonly resumes?: number | undefined
}

/** One round across all volumes of the pipeline (they advance together). */
export interface PipelineRound {
  readonly round: number
  readonly volumes: readonly VolumeRoundStats[]
  readonly startedAt: number
  readonly totalMs: number
}

export function changedBytes(s: VolumeRoundStats): number {
  return s.dataBytes + s.zeroBytes
}
