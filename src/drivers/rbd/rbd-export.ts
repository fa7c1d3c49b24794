/** Exports of an rbd image as records: `rbd export-diff`, and the repair extents read from a snapshot. */

import { MAX_CHUNK_BYTES } from '../../delta-format/diff-constants.js'
import { decodeDiff } from '../../delta-format/diff-decoder.js'
import type { DataRecord, DiffHeader } from '../../delta-format/diff-records.js'
import type { Extent } from '../volume-driver.js'
import { EXPORT_SPAN_GAP_BYTES, EXPORT_SPANS_IN_FLIGHT } from './librbd-export-py.js'
import { librbdExporter } from './librbd-exporters.js'
import { imageWhere } from './librbd-image.js'
import { librbdSession } from './librbd-session.js'
import { type RbdConnection, rbdStream, type StreamingRbd } from './rbd-cli.js'

export interface RbdDiffExport {
  readonly header: DiffHeader
  readonly records: AsyncIterable<DataRecord>
  readonly process: StreamingRbd
}

/**
 * `rbd export-diff [--from-snap F] [--whole-object] SPEC@TO -`, decoded (and so validated) as it streams.
 * Unless `librbd: false`, wherever a librbd session connects (python3-rbd is there), the same stream comes
 * from the librbd exporter (librbd-export-py.ts), which reads the changed extents in object-sized spans.
 */
export async function exportDiffRecords(
  o: {
    readonly connection: RbdConnection
    readonly wholeObject: boolean
    readonly librbd?: boolean | undefined
  },
  spec: string,
  from: string | undefined,
  to: string,
): Promise<RbdDiffExport> {
  const { connection: c, wholeObject } = o
  const args = [
    'export-diff',
    '--no-progress',
    ...(from ? ['--from-snap', from] : []),
    ...(wholeObject ? ['--whole-object'] : []),
    `${spec}@${to}`,
    '-',
  ]
  const what = `export-diff of ${spec}@${to}`
  const p =
    o.librbd !== false && (await librbdSession(c))
      ? startLibrbdExport(c, spec, from, to, wholeObject, what)
      : rbdStream(c, args, what, { stdin: false, stdout: true })
  try {
    const d = await decodeDiff(p.stdout as NonNullable<typeof p.stdout>)
    return { header: d.header, records: d.records, process: p }
  } catch (e) {
    // An rbd that failed leaves an empty or cut stream: its own error is the one to report.
    await p.done
    throw e
  }
}

/**
 * The content of `extents` at SPEC@TO as write records, read from a raw `rbd export` (the only way
 * the CLI reads arbitrary ranges): a full read of the image, paid only when repairing a destination.
 */
export async function* snapshotExtents(
  c: RbdConnection,
  spec: string,
  to: string,
  size: number,
  extents: readonly Extent[],
): AsyncGenerator<DataRecord> {
  const want = [...extents]
    .map((e) => ({ offset: e.offset, end: Math.min(size, e.offset + e.length) }))
    .filter((e) => e.end > e.offset)
    .sort((a, b) => a.offset - b.offset)
  if (want.length === 0) return
  const p = rbdStream(c, ['export', '--no-progress', `${spec}@${to}`, '-'], `export of ${spec}@${to}`, {
    stdin: false,
    stdout: true,
  })
  let pos = 0
  let i = 0
  try {
    for await (const chunk of p.stdout as AsyncIterable<Buffer>) {
      const end = pos + chunk.length
      while (i < want.length && (want[i] as { end: number }).end <= pos) i++
      for (let j = i; j < want.length && (want[j] as { offset: number }).offset < end; j++) {
        const w = want[j] as { offset: number; end: number }
        const s = Math.max(w.offset, pos)
        const e = Math.min(w.end, end)
        for (let o = s; o < e; o += MAX_CHUNK_BYTES) {
          yield {
            kind: 'write',
            offset: o,
            data: Buffer.from(chunk.subarray(o - pos, Math.min(e, o + MAX_CHUNK_BYTES) - pos)),
          }
        }
      }
      pos = end
      if (i >= want.length) break
    }
  } finally {
    p.kill()
  }
}

/** The librbd exporter (librbd-export-py.ts) for SPEC@TO, its stream on stdout: a warm one where one waits. */
export function startLibrbdExport(
  c: RbdConnection,
  spec: string,
  from: string | undefined,
  to: string,
  wholeObject: boolean,
  what: string,
): StreamingRbd {
  const job = {
    ...imageWhere(spec),
    fromSnap: from ?? null,
    toSnap: to,
    wholeObject,
    gap: EXPORT_SPAN_GAP_BYTES,
    inFlight: EXPORT_SPANS_IN_FLIGHT,
  }
  return librbdExporter(c, job, {
    what,
    name: 'the librbd exporter (python3-rbd)',
    argv: ['librbd-export', ...(from ? ['--from-snap', from] : []), `${spec}@${to}`],
  })
}
