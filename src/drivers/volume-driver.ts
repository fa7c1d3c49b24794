/**
 * VolumeDriver: the seam between replication logic and a volume's storage (raw file, rbd image …).
 *
 * Contract (every implementation runs test/contract/volume-driver-contract.ts):
 * - Only snapshots whose names start with SNAPSHOT_PREFIX are listed, created or deleted; any other
 *   name is refused with SNAPSHOT_NAME_INVALID. deleteSnapshot of a missing snapshot is a no-op.
 * - exportDiff writes an "rbd diff v1" stream (docs/WIRE-FORMAT.md) into `sink` and ends it; from
 *   `fromSnap` (absent: the base, only allocated/non-zero data) to `toSnap`, which must have been
 *   created with createSnapshot. Drivers without frozen snapshots record `toSnap` during the export:
 *   until the export completes, the snapshot is incomplete and must not be used as a base.
 * - importDiff consumes its source to the end, or destroys it on failure (the producer never hangs).
 * - importDiff applies such a stream and then creates `toSnap`; it refuses (DEST_HEAD_DIVERGED) when
 *   the head no longer equals `fromSnap`, unless `repair` says the stream covers the divergence. A
 *   base import (no fromSnap) refuses to overwrite existing data unless `overwrite` is set.
 * - Errors are SnapferryErrors naming the volume and snapshot; `transient` marks retryable ones.
 * - Every call takes an AbortSignal; an aborted call leaves no complete-looking snapshot behind.
 */
import type { Readable, Writable } from 'node:stream'

export interface DriverCapabilities {
  /** A snapshot freezes the data (rbd). False: a snapshot records what one read of the head saw (file). */
  readonly frozenSnapshots: boolean
  /** Computing a delta reads the whole volume, so each round costs a full scan (file driver). */
  readonly diffScansVolume: boolean
  /** exportDiff(from, to) can be run again with identical output (needs frozen snapshots). */
  readonly repeatableExport: boolean
  /** headChangesSince() can list the extents where the head differs from a snapshot. */
  readonly headDiff: boolean
  /** The head can be rolled back to a snapshot. */
  readonly rollback: boolean
  /** The volume can change size (file: yes; block device: only within the device). */
  readonly resize: boolean
  /** exportDiff honours `include` (re-sending extents to repair a destination). */
  readonly exportInclude: boolean
}

export type VolumeKind = 'file' | 'block-device' | 'rbd-image'

export interface VolumeInfo {
  readonly exists: boolean
  readonly kind: VolumeKind
  /** Logical size in bytes (0 when it does not exist). */
  readonly size: number
  /** Human description: path, pool/image … */
  readonly location: string
}

export interface SnapshotInfo {
  readonly name: string
  /** False while an export (file driver) or import is still filling it in: never a valid base. */
  readonly complete: boolean
  readonly size: number
  readonly createdAt: string
}

export interface Extent {
  readonly offset: number
  readonly length: number
}

export interface TransferStats {
  /** Bytes of the rbd diff stream. */
  readonly streamBytes: number
  /** Bytes of 'w' data. */
  readonly dataBytes: number
  /** Bytes covered by 'z' records. */
  readonly zeroBytes: number
  /** Number of 'w' and 'z' records. */
  readonly extents: number
  readonly durationMs: number
}

export interface ExportResult extends TransferStats {
  /** Bytes read to compute the delta (a full scan for the file driver, 0 for fast-diff rbd). */
  readonly scannedBytes: number
  /** The image size written in the diff. */
  readonly size: number
}

export interface ImportResult extends TransferStats {
  readonly size: number
  /** How the driver applied it, when it had a choice (rbd: 'staged-file' or 'stdin'). */
  readonly applyMode?: string | undefined
  /** When each step of the apply ended, ms after it began (rbd: first bytes, checks, marker, import-diff). */
  readonly phasesMs?: Readonly<Record<string, number>> | undefined
  /** A streamed apply's time spent waiting for the delta's next bytes, and while the destination took them (rbd). */
  readonly waitsMs?: ApplyWaits | undefined
}

export interface ApplyWaits {
  /** Waiting for the delta's next bytes: the link, the relay or the source was slower. */
  readonly forDelta: number
  /** Handing bytes to the destination (rbd import-diff): the destination cluster was slower. */
  readonly forDestination: number
}

export interface ExportRequest {
  readonly fromSnap?: string | undefined
  readonly toSnap: string
  /** Extents to ship whatever their state, to repair a destination whose head diverged there. */
  readonly include?: readonly Extent[] | undefined
  readonly signal?: AbortSignal | undefined
}

export interface ImportRequest {
  readonly fromSnap?: string | undefined
  readonly toSnap: string
  /** The stream covers the destination's divergence from fromSnap (see headChangesSince). */
  readonly repair?: boolean | undefined
  /** A base import may replace existing data. */
  readonly overwrite?: boolean | undefined
  readonly signal?: AbortSignal | undefined
}

export type HeadState =
  | { readonly matches: true }
  | {
      readonly matches: false
      readonly reason: 'interrupted-apply' | 'modified' | 'missing'
      readonly detail: string
    }

export interface ChecksumResult {
  readonly algorithm: 'sha256'
  readonly digest: string
  readonly size: number
}

/** A digest of a snapshot's block-hash record: equal digests mean equal content, block for block. */
export interface RecordDigest {
  readonly blockSize: number
  readonly size: number
  /** sha256 over the record's block hashes. */
  readonly digest: string
}

export interface VolumeDriver {
  readonly capabilities: DriverCapabilities
  describe(signal?: AbortSignal): Promise<VolumeInfo>
  listSnapshots(signal?: AbortSignal): Promise<SnapshotInfo[]>
  createSnapshot(name: string, signal?: AbortSignal): Promise<void>
  deleteSnapshot(name: string, signal?: AbortSignal): Promise<void>
  exportDiff(req: ExportRequest, sink: Writable): Promise<ExportResult>
  importDiff(req: ImportRequest, source: Readable | AsyncIterable<Uint8Array>): Promise<ImportResult>
  /** Whether the head still equals `snap` (cheap when the driver can prove it, a scan otherwise). */
  checkHead(snap: string, signal?: AbortSignal): Promise<HeadState>
  /** Extents where the head differs from `snap` (capability headDiff). */
  headChangesSince(snap: string, signal?: AbortSignal): Promise<Extent[]>
  /** sha256 of the volume's content at `at` ('head' or a snapshot, if frozenSnapshots). */
  checksum(at: 'head' | { readonly snapshot: string }, signal?: AbortSignal): Promise<ChecksumResult>
  /** The digest of `snapshot`'s block-hash record, for drivers that keep records (verify: records). */
  recordDigest?(snapshot: string, signal?: AbortSignal): Promise<RecordDigest>
  /** A cheap estimate of the bytes a delta from `fromSnap` to the head would ship, if the driver has one. */
  estimateDiff?(fromSnap: string | undefined, signal?: AbortSignal): Promise<number>
}
