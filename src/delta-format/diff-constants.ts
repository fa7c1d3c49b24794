/** Banners and record tags of Ceph's rbd diff / export formats (src/tools/rbd/Utils.h). See docs/WIRE-FORMAT.md. */

export const DIFF_BANNER_V1 = Buffer.from('rbd diff v1\n', 'latin1')
export const DIFF_BANNER_V2 = Buffer.from('rbd diff v2\n', 'latin1')
export const IMAGE_BANNER_V2 = Buffer.from('rbd image v2\n', 'latin1')
export const IMAGE_DIFFS_BANNER_V2 = Buffer.from('rbd image diffs v2\n', 'latin1')

export const TAG = {
  FROM_SNAP: 0x66, // 'f'
  TO_SNAP: 0x74, // 't'
  IMAGE_SIZE: 0x73, // 's'
  WRITE: 0x77, // 'w'
  ZERO: 0x7a, // 'z'
  END: 0x65, // 'e'
  SNAP_PROTECTED: 0x70, // 'p' (v2 only)
  IMAGE_ORDER: 0x4f, // 'O'
  IMAGE_FEATURES: 0x54, // 'T'
  STRIPE_UNIT: 0x55, // 'U'
  STRIPE_COUNT: 0x43, // 'C'
  IMAGE_META: 0x4d, // 'M'
  IMAGE_END: 0x45, // 'E'
} as const

/** Snapshot names longer than this are rejected as corrupt input (Ceph's own limit is far lower in practice). */
export const MAX_SNAP_NAME_BYTES = 4096
/** Largest data chunk the decoder hands out at once: memory stays flat whatever a record claims. */
export const MAX_CHUNK_BYTES = 1 << 20
/**
 * Largest 'w' record the v1 encoder writes by joining contiguous write pieces (one default RADOS object).
 * The decoder splits a record wherever its input chunks end (a pipe read, a 1 MiB segment), and `rbd
 * import-diff` from stdin applies one record at a time, waiting for each write: re-encoded piece by piece,
 * the base of the downtime bench became ~10,400 serial writes of ~60 KiB instead of ~260 (docs/BENCHMARKS.md).
 */
export const COALESCE_WRITE_BYTES = 4 << 20
