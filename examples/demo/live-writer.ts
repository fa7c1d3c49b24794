/**
 * A stand-in for a running VM: writes unique random 4 KiB blocks at random aligned offsets of an image,
 * at a fixed rate, until SIGTERM. Usage: node live-writer.js IMAGE BYTES_PER_SECOND PIDFILE
 */
import { randomBytes, randomInt } from 'node:crypto'
import { open, rm, stat, writeFile } from 'node:fs/promises'

const [image, rateArg, pidFile] = process.argv.slice(2)
if (!image || !rateArg || !pidFile) {
  process.stderr.write('usage: live-writer IMAGE BYTES_PER_SECOND PIDFILE\n')
  process.exit(2)
}
const rate = Number(rateArg)
const blocks = Math.floor((await stat(image)).size / 4096)
const fh = await open(image, 'r+')
let stopping = false
process.on('SIGTERM', () => {
  stopping = true
})
await writeFile(pidFile, String(process.pid))
const tickMs = 10
let written = 0
const t0 = performance.now()
while (!stopping) {
  // Keep the average exact: write what the rate allows by now.
  const due = Math.floor((((performance.now() - t0) / 1000) * rate) / 4096)
  while (written < due && !stopping) {
    await fh.write(randomBytes(4096), 0, 4096, randomInt(blocks) * 4096)
    written++
  }
  await new Promise((r) => setTimeout(r, tickMs))
}
await fh.close()
await rm(pidFile, { force: true })
process.stderr.write(`live-writer: stopped after ${written} blocks of 4 KiB\n`)
