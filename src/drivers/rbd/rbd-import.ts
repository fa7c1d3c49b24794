/**
 * Apply a delta with `rbd import-diff`. rbd imports a file with parallel writes but stdin serially
 * (one extent at a time, ~1,900 extents/s here), so the delta is staged to a file while it arrives;
 * only a delta larger than the staging limit falls back to streaming into stdin (flat disk use).
 */
import { once } from 'node:events'
import { type FileHandle, open, readFile, rm } from 'node:fs/promises'
import path from 'node:path'
import type { Writable } from 'node:stream'
import { SnapferryError } from '../../errors/snapferry-error.js'
import { type RbdConnection, rbd, rbdStream, type StreamingRbd, stopImportDiff } from './rbd-cli.js'

export type ApplyMode = 'staged-file' | 'stdin'

export interface ImportDiffOptions {
  readonly conn: RbdConnection
  readonly spec: string
  readonly stageFile: string
  readonly stageLimit: number
  readonly signal?: AbortSignal | undefined
}

/**
 * `rbd import-diff -` started ahead of its input: it starts, connects and opens the image while the
 * apply's checks run, then waits on stdin (it writes nothing before the diff's first record arrives).
 * Stopped unused (stopImportDiff: its stdin closes before a whole record), it exits having written nothing.
 */
export function startImportDiff(conn: RbdConnection, spec: string): StreamingRbd {
  return rbdStream(conn, ['import-diff', '--no-progress', '-', spec], `import-diff into ${spec}`, {
    stdin: true,
    stdout: false,
  })
}

/**
 * Feed encoded chunks to import-diff; returns how it was applied. With `started` (an import-diff begun
 * by startImportDiff), the chunks stream straight into it: no staging.
 */
export async function importDiffChunks(
  o: ImportDiffOptions,
  chunks: AsyncIterable<Buffer>,
  started?: StreamingRbd,
): Promise<ApplyMode> {
  if (started) return streamInto(started, chunks, o.signal)
  let fh: FileHandle | undefined = await open(o.stageFile, 'w', 0o600)
  let staged = 0
  let stdin: StreamingRbd | undefined
  try {
    for await (const chunk of chunks) {
      o.signal?.throwIfAborted()
      if (fh) {
        await fh.write(chunk)
        staged += chunk.length
        if (staged > o.stageLimit) {
          // Too big to stage: stream what we have, then the rest, into a serial import.
          await fh.close()
          fh = undefined
          stdin = startImportDiff(o.conn, o.spec)
          await writeAll(stdin.stdin as Writable, await readFile(o.stageFile), stdin.done)
          await rm(o.stageFile, { force: true })
        }
      } else {
        await writeAll(
          (stdin as NonNullable<typeof stdin>).stdin as Writable,
          chunk,
          (stdin as NonNullable<typeof stdin>).done,
        )
      }
    }
    if (fh) {
      await fh.close()
      fh = undefined
      await rbd(
        o.conn,
        ['import-diff', '--no-progress', o.stageFile, o.spec],
        `import-diff into ${o.spec}`,
        o.signal,
      )
      return 'staged-file'
    }
    const p = stdin as NonNullable<typeof stdin>
    ;(p.stdin as Writable).end()
    await p.done
    return 'stdin'
  } finally {
    await fh?.close().catch(() => {})
    if (stdin) await stopImportDiff(stdin)
    await rm(o.stageFile, { force: true })
  }
}

async function streamInto(
  p: StreamingRbd,
  chunks: AsyncIterable<Buffer>,
  signal?: AbortSignal,
): Promise<ApplyMode> {
  try {
    for await (const chunk of chunks) {
      signal?.throwIfAborted()
      await writeAll(p.stdin as Writable, chunk, p.done)
    }
    ;(p.stdin as Writable).end()
    await p.done
    return 'stdin'
  } finally {
    await stopImportDiff(p)
  }
}

async function writeAll(w: Writable, b: Buffer, died: Promise<void>): Promise<void> {
  if (w.write(b)) return
  await Promise.race([
    once(w, 'drain'),
    died.then(() => {
      throw new SnapferryError('RBD_CLI_FAILED', 'rbd import-diff exited before reading its input')
    }),
  ])
}

export function stageFileFor(dir: string, spec: string, snap: string): string {
  return path.join(dir, `snapferry-stage-${spec.replace(/\//g, '_')}-${snap}.diff`)
}
