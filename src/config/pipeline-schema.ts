/**
 * The pipeline schema: the user's interface, validated once at the edge (see load-pipeline.ts).
 * Every field is documented here; docs/PIPELINES.md and schema/pipeline.schema.json derive from it.
 */
import { z } from 'zod'
import { cephName, NAME_PATTERN, nameSchema } from './name-schemas.js'
import { cinderEndpointSchema, openstackStepSchema, regionSchema } from './openstack-schema.js'
import { transportSchema } from './transport-schema.js'
import { blockSizeSchema, durationSchema, sizeSchema } from './unit-schemas.js'

export { COMPRESSION_SETTINGS, sshSchema, transportSchema } from './transport-schema.js'
export { NAME_PATTERN }

export const HOST_LOCAL = 'local'

/**
 * `local`, or an SSH destination as OpenSSH takes it: `[user@]host[:port]`, a Host alias of
 * ~/.ssh/config, or `[v6addr]`. Nothing that could be read as an option or by a shell.
 */
export const HOST_PATTERN =
  /^(?:[A-Za-z0-9_][A-Za-z0-9._-]*@)?(?:[A-Za-z0-9_][A-Za-z0-9._-]*|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/
const hostSchema = z
  .string()
  .regex(
    HOST_PATTERN,
    'must be `local` or an SSH destination `[user@]host[:port]` (or a Host alias of ~/.ssh/config)',
  )
  .default(HOST_LOCAL)
  .describe(
    'Where the agent runs: `local` (a child process of the controller), or an SSH destination `[user@]host[:port]` / a Host alias of ~/.ssh/config (see `transport.ssh`).',
  )

/** The `file` driver: a raw image file or a block device on the agent's host. */
export const fileEndpointSchema = z.strictObject({
  driver: z.literal('file'),
  host: hostSchema,
  path: z
    .string()
    .min(1)
    .describe('Raw image file or block device. Relative paths are relative to the pipeline file.'),
  blockSize: blockSizeSchema
    .default(64 * 1024)
    .describe(
      'Granularity of change detection: smaller ships fewer bytes per small write, costs a larger record.',
    ),
  stateDir: z
    .string()
    .min(1)
    .optional()
    .describe('Where snapshot records live; default `<path>.snapferry/`.'),
})

/** The `rbd` driver: a Ceph RBD image through the `rbd` CLI on the agent's host. */
export const rbdEndpointSchema = z.strictObject({
  driver: z.literal('rbd'),
  host: hostSchema,
  pool: cephName.describe('RBD pool, e.g. `volumes` for Cinder.'),
  namespace: cephName.optional().describe('RBD namespace within the pool, if any.'),
  image: cephName.describe('RBD image, e.g. `volume-<uuid>` for Cinder.'),
  cluster: cephName
    .optional()
    .describe('Cluster name (reads /etc/ceph/<cluster>.conf), or `conf` for an explicit file.'),
  conf: z.string().min(1).optional().describe('ceph.conf of the cluster; relative to the pipeline file.'),
  keyring: z.string().min(1).optional().describe('Keyring of the Ceph user; relative to the pipeline file.'),
  id: cephName.optional().describe('Ceph user without the `client.` prefix.'),
  timeout: durationSchema
    .default(60_000)
    .describe('Limit for connecting and for each RADOS operation of every rbd call.'),
  wholeObject: z
    .boolean()
    .default(false)
    .describe('`--whole-object` exports: whole objects instead of exact extents (fewer, bigger extents).'),
  librbd: z
    .boolean()
    .default(true)
    .describe(
      'Short calls (snapshots, listings, diffs, image-meta) in one open librbd session (python3-rbd, a dependency of ceph-common) instead of an `rbd` process each, and exports through librbd in object-sized reads instead of `rbd export-diff` (the same stream); falls back to the CLI where python3-rbd is missing. `false`: the CLI for everything.',
    ),
  stageDir: z
    .string()
    .min(1)
    .optional()
    .describe(
      'Where the destination stages a delta before `rbd import-diff` (a file imports with parallel writes).',
    ),
  stageLimit: sizeSchema
    .default(0)
    .describe(
      'Deltas up to this size are staged to a file and imported with parallel writes; larger ones stream into `rbd import-diff -` (serial, but overlapping the transfer). Default 0: always stream — on the clusters measured (docs/BENCHMARKS.md) staging did not pay for the wait it adds.',
    ),
})

/** One side of a volume; a union keyed by `driver`. */
export const endpointSchema = z.discriminatedUnion('driver', [
  fileEndpointSchema,
  rbdEndpointSchema,
  cinderEndpointSchema,
])

export const volumeSchema = z.strictObject({
  name: nameSchema.describe('Unique within the pipeline; names the volume in hooks, reports and logs.'),
  source: endpointSchema,
  destination: endpointSchema,
})

export const hookSchema = z.strictObject({
  name: nameSchema,
  run: z
    .union([z.string().min(1), z.array(z.string()).min(1)])
    .describe('A shell command line (run by /bin/sh -c), or an argv list run without a shell.'),
  timeout: durationSchema.default(60_000),
  env: z.record(z.string(), z.string()).default({}),
  cwd: z.string().optional().describe('Working directory; relative to the pipeline file.'),
})

/** A runbook entry: a shell hook (`run:`) or a typed OpenStack step (`openstack:`). */
export const runbookEntrySchema = z.union([hookSchema, openstackStepSchema])

export const STALL_POLICIES = ['keep-trying', 'fail', 'cutover'] as const
export const CONVERGED_ACTIONS = ['cutover', 'hold'] as const
export const VERIFY_LEVELS = ['full', 'records', 'none'] as const

export const convergenceSchema = z.strictObject({
  targetDowntime: durationSchema
    .default(30_000)
    .describe('The longest the workload may be stopped for the final delta, verification and hooks.'),
  maxRounds: z
    .number()
    .int()
    .min(1)
    .max(10_000)
    .default(30)
    .describe('Delta rounds after the base before giving up (the stall policy then decides).'),
  minRounds: z
    .number()
    .int()
    .min(0)
    .max(10_000)
    .default(1)
    .describe('Delta rounds to run after the base even when already converged (a warm-up).'),
  roundInterval: durationSchema.default(0).describe('Pause between rounds while converging.'),
  stallRounds: z
    .number()
    .int()
    .min(1)
    .max(100)
    .default(3)
    .describe('Consecutive rounds whose delta did not shrink before convergence counts as stalled.'),
  onStall: z
    .enum(STALL_POLICIES)
    .default('fail')
    .describe('What to do when deltas stop shrinking: keep going, fail, or cut over anyway.'),
  settle: z
    .boolean()
    .default(true)
    .describe(
      'Once the window fits but is predicted above half the target: take another round while it shrinks the final delta by 10 % or more.',
    ),
  whenConverged: z
    .enum(CONVERGED_ACTIONS)
    .default('hold')
    .describe(
      'Once the predicted window fits: cut over now, or hold the copy warm until `snapferry cutover`.',
    ),
  holdInterval: durationSchema.default(30_000).describe('Pause between rounds while holding warm.'),
})

export const cutoverSchema = z.strictObject({
  before: z
    .array(runbookEntrySchema)
    .default([])
    .describe('Stop or freeze the workload; downtime starts with the first.'),
  after: z
    .array(runbookEntrySchema)
    .default([])
    .describe('Attach and start on the destination; downtime ends with the last.'),
  rollback: z
    .array(runbookEntrySchema)
    .default([])
    .describe(
      'Run when cutover fails before the destination is promoted (e.g. restart the source workload).',
    ),
  verify: z
    .enum(VERIFY_LEVELS)
    .default('full')
    .describe(
      "`full`: compare every byte of both sides (sha256) while the workload is stopped; `records`: compare the final snapshot's block-hash records where both sides keep them (file driver, same block size; every byte otherwise); `none`: skip.",
    ),
})

export const snapshotsSchema = z.strictObject({
  keep: z
    .number()
    .int()
    .min(1)
    .max(100)
    .default(2)
    .describe('Shared snapshots to keep on both sides (the newest; never the base of a delta in flight).'),
})

/** Where a region's Cinder RBD backend keeps its images: the rbd endpoint fields without `image`. */
export const regionRbdSchema = rbdEndpointSchema.omit({ driver: true, image: true, pool: true }).extend({
  pool: cephName.default('volumes').describe("Cinder's `rbd_pool` in this region (default `volumes`)."),
})

export const openstackSchema = z.strictObject({
  cloud: z
    .string()
    .min(1)
    .optional()
    .describe(
      'The clouds.yaml entry (searched like `openstack` does); default `OS_CLOUD`, or OS_* variables.',
    ),
  regions: z
    .record(regionSchema, z.strictObject({ rbd: regionRbdSchema }))
    .describe("Per region: how the agents reach the Cinder RBD backend's Ceph cluster."),
  waitTimeout: durationSchema
    .default(300_000)
    .describe('Default limit for waiting on a status (volume available, server ACTIVE/SHUTOFF).'),
})

export const pipelineSchema = z.strictObject({
  apiVersion: z.literal('snapferry/v1'),
  kind: z.literal('Pipeline'),
  name: nameSchema.describe('Names the state directory, logs and journal.'),
  description: z.string().optional(),
  volumes: z.array(volumeSchema).min(1).describe('The volumes of one VM: moved together, cut over together.'),
  concurrency: z.number().int().min(1).max(64).default(2).describe('Volumes moved at the same time.'),
  transport: transportSchema.default(() => transportSchema.parse({})),
  convergence: convergenceSchema.default(() => convergenceSchema.parse({})),
  cutover: cutoverSchema.default(() => cutoverSchema.parse({})),
  snapshots: snapshotsSchema.default({ keep: 2 }),
  openstack: openstackSchema
    .optional()
    .describe('OpenStack cloud and regions, for `cinder` volumes and typed steps.'),
  stateDir: z
    .string()
    .optional()
    .describe('Journal, lock and logs; default `.snapferry/<name>/` next to the pipeline file.'),
})
