/** A 1 GiB image through the file driver (base + delta) in one process: identical, and memory stays flat. */
import { execFile } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { expect, it } from 'vitest'
import { REPO_ROOT } from '../helpers/built.js'

it('1 GiB image: base and delta leave identical files with peak RSS well under 200 MB', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'sf-1g-'))
  try {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [path.join(REPO_ROOT, 'dist/bench/file-driver-probe.js'), dir, String(1 << 30)],
      {
        maxBuffer: 1 << 20,
      },
    )
    const r = JSON.parse(stdout.trim().split('\n').pop() as string)
    expect(r.destinationSha256).toBe(r.sourceSha256)
    expect(r.base.scanned).toBe(1 << 30)
    expect(r.delta.dataBytes).toBeGreaterThan(0)
    expect(r.delta.dataBytes).toBeLessThan(r.base.dataBytes / 2)
    // The whole image is 1 GiB; everything (source, relay, destination) runs in this one process.
    expect(r.maxRssBytes).toBeLessThan(160 * 1e6)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}, 180_000)
