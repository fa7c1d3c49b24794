/**
 * Probe: ship a base and a delta of a large raw image with the file driver, in one process, and print
 * JSON with checksums, timings and peak RSS. Used by the 1 GiB memory test and by `npm run bench`.
 * Usage: node dist/bench/file-driver-probe.js DIR SIZE_BYTES [BLOCK_SIZE]
 */
import { randomBytes } from 'node:crypto'
import { mkdir, open, rm } from 'node:fs/promises'
import path from 'node:path'
import { writeVmLikeImage } from '../examples/lib/vm-like-image.js'
import { FileDriver } from '../src/drivers/file/file-driver.js'
import { relayDelta } from '../src/replication/relay-delta.js'

const [dir = '/tmp/sf-probe', sizeArg = String(1 << 30), bsArg = String(64 * 1024)] = process.argv.slice(2)
const size = Number(sizeArg)
const blockSize = Number(bsArg)

async function scribble(file: string, bytes: number, writes: number): Promise<void> {
  const fh = await open(file, 'r+')
  for (let i = 0; i < writes; i++) {
    const off = Math.floor(Math.random() * (bytes - 65536))
    await fh.write(randomBytes(4096 + Math.floor(Math.random() * 61440)), 0, undefined, off)
  }
  await fh.close()
}

await rm(dir, { recursive: true, force: true })
await mkdir(dir, { recursive: true })
const src = path.join(dir, 'src.img')
const dst = path.join(dir, 'dst.img')
await writeVmLikeImage(src, size)
const a = new FileDriver({ path: src, blockSize })
const b = new FileDriver({ path: dst, blockSize })
const ship = async (from: string | undefined, to: string) => {
  await a.createSnapshot(to)
  return relayDelta({
    source: a,
    destination: b,
    label: 'probe',
    exportRequest: { fromSnap: from, toSnap: to },
    importRequest: { fromSnap: from, toSnap: to },
  })
}
const t0 = performance.now()
const base = await ship(undefined, 'snapferry-base')
const baseMs = performance.now() - t0
await scribble(src, size, 2000)
const t1 = performance.now()
const delta = await ship('snapferry-base', 'snapferry-d1')
const deltaMs = performance.now() - t1
const [sa, sb] = await Promise.all([a.checksum('head'), b.checksum('head')])
console.log(
  JSON.stringify({
    size,
    blockSize,
    base: { ms: Math.round(baseMs), dataBytes: base.exported.dataBytes, scanned: base.exported.scannedBytes },
    delta: {
      ms: Math.round(deltaMs),
      dataBytes: delta.exported.dataBytes,
      extents: delta.exported.extents,
      scanned: delta.exported.scannedBytes,
    },
    sourceSha256: sa.digest,
    destinationSha256: sb.digest,
    maxRssBytes: process.resourceUsage().maxRSS * 1024,
  }),
)
await rm(dir, { recursive: true, force: true })
