/** Per-block content hashes: xxh128 (hash-wasm), with all-zero blocks recorded as 16 zero bytes. */
import { createXXHash128, type IHasher } from 'hash-wasm'

export const HASH_BYTES = 16
export const ZERO_HASH = Buffer.alloc(HASH_BYTES)

let hasher: Promise<IHasher> | undefined

export interface BlockHasher {
  /** Hash `data` into out[at..at+16]; returns whether the block is all zeros. */
  hashInto(data: Buffer, out: Buffer, at: number): boolean
}

/** Zero blocks are detected by memcmp (far faster than hashing) and stored as ZERO_HASH. */
export async function blockHasher(): Promise<BlockHasher> {
  hasher ??= createXXHash128()
  const h = await hasher
  return {
    hashInto(data, out, at) {
      if (isZero(data)) {
        out.fill(0, at, at + HASH_BYTES)
        return true
      }
      h.init()
      h.update(data)
      const d = h.digest('binary')
      out.set(d, at)
      // A real hash of all zero bytes would be read back as "zero block": astronomically unlikely, but
      // make it impossible by flipping a bit, so ZERO_HASH means exactly "all zeros".
      if (ZERO_HASH.equals(out.subarray(at, at + HASH_BYTES))) out[at] = 1
      return false
    },
  }
}

const ZEROS = Buffer.alloc(1 << 20)

export function isZero(data: Buffer): boolean {
  for (let i = 0; i < data.length; i += ZEROS.length) {
    const n = Math.min(ZEROS.length, data.length - i)
    if (!data.subarray(i, i + n).equals(ZEROS.subarray(0, n))) return false
  }
  return true
}
