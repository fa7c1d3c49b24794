/** Small file helpers for tests that change volumes behind snapferry's back. */
import { open } from 'node:fs/promises'

/** Write `data` at `offset`, creating the file if needed. */
export async function pwrite(file: string, offset: number, data: Buffer): Promise<void> {
  const fh = await open(file, 'r+').catch(() => open(file, 'w+'))
  try {
    await fh.write(data, 0, data.length, offset)
  } finally {
    await fh.close()
  }
}
