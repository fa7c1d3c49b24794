/**
 * The pipeline schema: the user's interface, validated once at the edge (see load-pipeline.ts).
 * Every field is documented here; docs/PIPELINES.md and schema/pipeline.schema.json derive from it.
 */
import { z } from 'zod'
import { blockSizeSchema, durationSchema, rateSchema, sizeSchema } from './unit-schemas.js'

/** Names that end up in snapshot names, file names and logs: no spaces, no shell metacharacters. */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/
const nameSchema = z
  .string()
  .regex(
    NAME_PATTERN,
    'must be 1–63 characters of letters, digits, ".", "_" or "-", starting with a letter or digit',
  )

export const HOST_LOCAL = 'local'

/** The `file` driver: a raw image file or a block device on the agent's host. */
export const fileEndpointSchema = z.strictObject({
  driver: z.literal('file'),
  /** Where the agent runs: `local` (a child process of the controller). */
  host: z.literal(HOST_LOCAL).default(HOST_LOCAL),
  /** Raw image file or block device. Relative paths are relative to the pipeline file. */
  path: z.string().min(1),
  /** Granularity of change detection: smaller ships fewer bytes per small write, costs a larger record. */
  blockSize: blockSizeSchema.default(64 * 1024),
  /** Where snapshot records live; default `<path>.snapferry/`. */
  stateDir: z.string().min(1).optional(),
})

/** Ceph names (pool, namespace, image, user id): no '/', '@' or spaces, nothing a shell could read. */
const cephName = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/,
    'must be letters, digits, ".", "_" or "-" (no "/", "@" or spaces)',
  )

/** The `rbd` driver: a Ceph RBD image through the `rbd` CLI on the agent's host. */
export const rbdEndpointSchema = z.strictObject({
  driver: z.literal('rbd'),
  host: z.literal(HOST_LOCAL).default(HOST_LOCAL),
  pool: cephName,
  namespace: cephName.optional(),
  image: cephName,
  /** Cluster name (reads /etc/ceph/<cluster>.conf), or `conf` for an explicit file. */
  cluster: cephName.optional(),
  conf: z.string().min(1).optional(),
  keyring: z.string().min(1).optional(),
  /** Ceph user without the `client.` prefix. */
  id: cephName.optional(),
  /** Limit for connecting and for each RADOS operation of every rbd call. */
  timeout: durationSchema.default(60_000),
  /** `--whole-object` exports: whole objects instead of exact extents (fewer, bigger extents). */
  wholeObject: z.boolean().default(false),
  /** Where the destination stages a delta before `rbd import-diff` (a file imports with parallel writes). */
  stageDir: z.string().min(1).optional(),
  /**
   * Deltas up to this size are staged to a file and imported with parallel writes; larger ones stream
   * into `rbd import-diff -` (serial, but overlapping the transfer). Default 0: always stream — on the
   * clusters measured (docs/BENCHMARKS.md) staging did not pay for the wait it adds.
   */
  stageLimit: sizeSchema.default(0),
})

/** One side of a volume; a union keyed by `driver`. */
export const endpointSchema = z.discriminatedUnion('driver', [fileEndpointSchema, rbdEndpointSchema])

export const volumeSchema = z.strictObject({
  name: nameSchema,
  source: endpointSchema,
  destination: endpointSchema,
})

export const hookSchema = z.strictObject({
  name: nameSchema,
  /** A shell command line (run by /bin/sh -c), or an argv list run without a shell. */
  run: z.union([z.string().min(1), z.array(z.string()).min(1)]),
  timeout: durationSchema.default(60_000),
  env: z.record(z.string(), z.string()).default({}),
  /** Working directory; relative to the pipeline file. */
  cwd: z.string().optional(),
})

export const STALL_POLICIES = ['keep-trying', 'fail', 'cutover'] as const
export const CONVERGED_ACTIONS = ['cutover', 'hold'] as const
export const VERIFY_LEVELS = ['full', 'records', 'none'] as const

export const convergenceSchema = z.strictObject({
  /** The longest the workload may be stopped for the final delta, verification and hooks. */
  targetDowntime: durationSchema.default(30_000),
  /** Delta rounds after the base before giving up (the stall policy then decides). */
  maxRounds: z.number().int().min(1).max(10_000).default(30),
  /** Delta rounds to run after the base even when already converged (a warm-up). */
  minRounds: z.number().int().min(0).max(10_000).default(1),
  /** Pause between rounds while converging. */
  roundInterval: durationSchema.default(0),
  /** Consecutive rounds whose delta did not shrink before convergence counts as stalled. */
  stallRounds: z.number().int().min(1).max(100).default(3),
  /** What to do when deltas stop shrinking: keep going, fail, or cut over anyway. */
  onStall: z.enum(STALL_POLICIES).default('fail'),
  /** Once the predicted window fits: cut over now, or hold the copy warm until `snapferry cutover`. */
  whenConverged: z.enum(CONVERGED_ACTIONS).default('hold'),
  /** Pause between rounds while holding warm. */
  holdInterval: durationSchema.default(30_000),
})

export const cutoverSchema = z.strictObject({
  /** Stop or freeze the workload; downtime starts with the first. */
  before: z.array(hookSchema).default([]),
  /** Attach and start on the destination; downtime ends with the last. */
  after: z.array(hookSchema).default([]),
  /** Run when cutover fails before the destination is promoted (e.g. restart the source workload). */
  rollback: z.array(hookSchema).default([]),
  /**
   * `full`: compare every byte of both sides (sha256) while the workload is stopped; `records`: compare
   * the final snapshot's block-hash records where both sides keep them (file driver, same block size;
   * every byte otherwise); `none`: skip.
   */
  verify: z.enum(VERIFY_LEVELS).default('full'),
})

export const transportSchema = z.strictObject({
  /** `relay`: source agent → controller → destination agent. */
  type: z.literal('relay').default('relay'),
  /** Average bandwidth cap for the whole pipeline. */
  bandwidth: rateSchema.default(Number.POSITIVE_INFINITY),
})

export const snapshotsSchema = z.strictObject({
  /** Shared snapshots to keep on both sides (the newest; never the base of a delta in flight). */
  keep: z.number().int().min(1).max(100).default(2),
})

export const pipelineSchema = z.strictObject({
  apiVersion: z.literal('snapferry/v1'),
  kind: z.literal('Pipeline'),
  name: nameSchema,
  description: z.string().optional(),
  volumes: z.array(volumeSchema).min(1),
  /** Volumes moved at the same time. */
  concurrency: z.number().int().min(1).max(64).default(2),
  transport: transportSchema.default({ type: 'relay', bandwidth: Number.POSITIVE_INFINITY }),
  convergence: convergenceSchema.default(() => convergenceSchema.parse({})),
  cutover: cutoverSchema.default(() => cutoverSchema.parse({})),
  snapshots: snapshotsSchema.default({ keep: 2 }),
  /** Journal, lock and logs; default `.snapferry/<name>/` next to the pipeline file. */
  stateDir: z.string().optional(),
})

export type PipelineInput = z.input<typeof pipelineSchema>
