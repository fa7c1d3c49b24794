/**
 * The file driver's import: check preconditions (snapshots, destination head, existing data), mark the
 * apply as under way, apply the diff while building the end snapshot's record, sync, and commit.
 */
import { open } from 'node:fs/promises'
import type { Readable } from 'node:stream'
import { SnapferryError } from '../../errors/snapferry-error.js'
import { assertEndSnapshotAbsent, decodeRequestedDelta } from '../import-preconditions.js'
import type { HeadState, ImportRequest, ImportResult } from '../volume-driver.js'
import { applyDiff } from './apply-diff.js'
import { blockHasher } from './block-hasher.js'
import { type RecordReader, RecordWriter } from './block-record.js'
import type { FileDriverOptions } from './file-driver.js'
import type { ApplyingMarker, FileSnapshotStore } from './file-snapshot-store.js'
import { ioError, sameStamp, stampOf, statVolume } from './file-volume.js'
import { headChanges } from './head-compare.js'

export interface FileImportContext {
  readonly opts: FileDriverOptions
  readonly store: FileSnapshotStore
  readonly label: string
}

export async function importIntoFile(
  ctx: FileImportContext,
  req: ImportRequest,
  source: Readable | AsyncIterable<Uint8Array>,
): Promise<ImportResult> {
  const t0 = performance.now()
  const decoded = await decodeRequestedDelta(source, req, ctx.label)
  const h = decoded.header
  assertEndSnapshotAbsent(await ctx.store.list(), req, ctx.label)
  const marker = await ctx.store.marker()
  const st = await statVolume(ctx.opts.path)
  let from: RecordReader | undefined
  if (req.fromSnap !== undefined) {
    const rec = await ctx.store.openRecord(req.fromSnap, 'start', ctx.opts.blockSize)
    from = rec
    if (!req.repair) {
      const head = await checkFileHead(ctx, rec, marker)
      if (!head.matches) {
        await rec.close()
        throw ctx.store.diverged(req.fromSnap, head)
      }
    }
  } else if (st.exists && st.size > 0 && !req.overwrite && !(marker && marker.fromSnap === null)) {
    throw new SnapferryError(
      'VOLUME_EXISTS',
      `destination ${ctx.label} already holds data and has no snapferry snapshot to continue from`,
      {
        hint: 'move it away, or set `overwrite: true` on the destination if its contents may be replaced',
        details: { volume: ctx.label, path: ctx.opts.path },
      },
    )
  }
  if (st.kind === 'block-device' && st.size < h.size) {
    await from?.close()
    throw new SnapferryError(
      'VOLUME_TOO_SMALL',
      `block device ${ctx.label} has ${st.size} bytes, the volume needs ${h.size}`,
      {
        hint: 'give the destination a device at least as large as the source',
        details: { volume: ctx.label, deviceSize: st.size, needed: h.size },
      },
    )
  }

  await ctx.store.setMarker({
    fromSnap: req.fromSnap ?? null,
    toSnap: req.toSnap,
    startedAt: new Date().toISOString(),
  })
  const fresh = req.fromSnap === undefined && st.kind === 'file'
  const fh = await open(ctx.opts.path, fresh ? 'w+' : 'r+').catch((e) => {
    throw ioError(ctx.opts.path, 'open', e)
  })
  const writer = await RecordWriter.create(
    await ctx.store.file(req.toSnap, '.rec'),
    req.toSnap,
    ctx.opts.blockSize,
    h.size,
  )
  const counters = { dataBytes: 0, zeroBytes: 0, extents: 0 }
  let streamBytes = 0
  try {
    const hasher = await blockHasher()
    const records = (async function* () {
      for await (const r of decoded.records) yield r
    })()
    await applyDiff(
      {
        fh,
        path: ctx.opts.path,
        kind: st.kind,
        blockSize: ctx.opts.blockSize,
        oldSize: fresh ? 0 : st.size,
        header: h,
        records,
        hasher,
        from,
        writer,
        zeroFillGaps: req.fromSnap === undefined && st.kind === 'block-device',
        sparse: fresh,
        signal: req.signal,
      },
      counters,
    )
    streamBytes = decoded.bytesRead()
    await fh.datasync().catch((e) => {
      throw ioError(ctx.opts.path, 'flush', e)
    })
    const stamp = st.kind === 'file' ? stampOf(await fh.stat({ bigint: true })) : undefined
    await writer.commit(stamp)
    await ctx.store.clearMarker()
  } catch (e) {
    await writer.discard()
    throw e
  } finally {
    await fh.close()
    await from?.close()
  }
  return { ...counters, streamBytes, size: h.size, durationMs: performance.now() - t0 }
}

/** Whether the head still equals the record: the apply marker, then the stat stamp, then a full re-hash. */
export async function checkFileHead(
  ctx: FileImportContext,
  rec: RecordReader,
  marker: ApplyingMarker | undefined,
  signal?: AbortSignal,
): Promise<HeadState> {
  if (marker) {
    return {
      matches: false,
      reason: 'interrupted-apply',
      detail: `an apply of '${marker.toSnap}' started at ${marker.startedAt} did not finish`,
    }
  }
  const st = await statVolume(ctx.opts.path)
  if (!st.exists) return { matches: false, reason: 'missing', detail: `${ctx.opts.path} does not exist` }
  // Quick proof for regular files: nothing has touched the file since the record was completed.
  if (st.kind === 'file' && sameStamp(st.stamp, rec.header.head)) return { matches: true }
  // A block device is usually larger than the volume on it: only the volume's bytes count.
  const size = st.kind === 'block-device' ? Math.min(st.size, rec.header.size) : st.size
  const changed = await headChanges(ctx.opts.path, size, rec, signal)
  if (changed.length === 0 && size === rec.header.size) return { matches: true }
  const bytes = changed.reduce((n, e) => n + e.length, 0)
  return {
    matches: false,
    reason: 'modified',
    detail: `${bytes} bytes in ${changed.length} extents differ from '${rec.header.name}'${size !== rec.header.size ? `, size ${size} instead of ${rec.header.size}` : ''}`,
  }
}
