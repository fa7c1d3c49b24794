/** Names users give things: they end up in snapshot names, file names, logs and rbd arguments. */
import { z } from 'zod'

/** Names that end up in snapshot names, file names and logs: no spaces, no shell metacharacters. */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/
export const nameSchema = z
  .string()
  .regex(
    NAME_PATTERN,
    'must be 1–63 characters of letters, digits, ".", "_" or "-", starting with a letter or digit',
  )

/** Ceph names (pool, namespace, image, user id): no '/', '@' or spaces, nothing a shell could read. */
export const cephName = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/,
    'must be letters, digits, ".", "_" or "-" (no "/", "@" or spaces)',
  )
