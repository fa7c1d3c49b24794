/** Make raw images that look like a VM disk: runs of random data, log text and zeros, written in 1 MiB pieces. */
import { randomBytes } from 'node:crypto'
import { open } from 'node:fs/promises'

const TEXT = Buffer.from(
  'Nov 21 23:20:58 web01 kernel: [ 12.345678] EXT4-fs (vda1): mounted filesystem with ordered data mode\n'.repeat(
    11_000,
  ),
).subarray(0, 1 << 20)

/** 30 % holes, 30 % random (incompressible), 40 % text (compressible), by 1 MiB piece. */
export async function writeVmLikeImage(file: string, bytes: number): Promise<void> {
  const fh = await open(file, 'w')
  try {
    await fh.truncate(bytes)
    for (let off = 0, i = 0; off < bytes; off += 1 << 20, i++) {
      const len = Math.min(1 << 20, bytes - off)
      const kind = (i * 7) % 10
      if (kind < 3) continue
      await fh.write(kind < 6 ? randomBytes(len) : TEXT.subarray(0, len), 0, len, off)
    }
  } finally {
    await fh.close()
  }
}
