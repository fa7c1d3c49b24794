/** The pipeline's OpenStack vocabulary: `cinder` endpoints and typed runbook steps (docs/OPENSTACK.md). */
import { z } from 'zod'
import { nameSchema } from './name-schemas.js'
import { durationSchema } from './unit-schemas.js'

/** OpenStack region names as Keystone has them (`RegionOne`); nothing a shell or URL could misread. */
export const regionSchema = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$/,
    'must be a region name such as RegionOne (letters, digits, ".", "_", "-")',
  )

/**
 * The `cinder` driver: a Cinder volume, named the OpenStack way. snapferry resolves it to its RBD image
 * (`<pool>/volume-<id>`) on the region's Ceph cluster (`openstack.regions.<region>.rbd`), and on the
 * destination side creates the volume (same size and type) unless `volume:` names an existing one.
 */
export const cinderEndpointSchema = z.strictObject({
  driver: z.literal('cinder'),
  region: regionSchema.describe(
    'The OpenStack region of the volume; must be listed under `openstack.regions`.',
  ),
  volume: z
    .string()
    .min(1)
    .max(255)
    .optional()
    .describe(
      'Volume id or unique name. Required on the source; on the destination, an existing empty volume to import into (default: snapferry creates one).',
    ),
  name: z
    .string()
    .min(1)
    .max(255)
    .optional()
    .describe("Name of the destination volume snapferry creates; default: the source volume's name."),
  volumeType: z
    .string()
    .min(1)
    .max(255)
    .optional()
    .describe("Volume type of the created destination volume; default: the source volume's type."),
  availabilityZone: z
    .string()
    .min(1)
    .max(255)
    .optional()
    .describe('Availability zone of the created destination volume; default: Cinder decides.'),
})

const serverRef = z.string().min(1).max(255).describe('Server id or unique name in the region.')
const volumeRefs = z
  .array(nameSchema)
  .min(1)
  .describe("Pipeline volume names; each means that volume's Cinder volume in the step's region.")
const stepTimeout = durationSchema
  .optional()
  .describe('How long to wait for the status (default `openstack.waitTimeout`).')

/** Typed OpenStack runbook steps: requests, not shell strings; each records its calls and knows its undo. */
export const openstackActionSchema = z.discriminatedUnion('action', [
  z.strictObject({
    action: z.literal('stop-server'),
    region: regionSchema,
    server: serverRef,
    timeout: stepTimeout,
  }),
  z.strictObject({
    action: z.literal('start-server'),
    region: regionSchema,
    server: serverRef,
    timeout: stepTimeout,
  }),
  z.strictObject({
    action: z.literal('detach-volumes'),
    region: regionSchema,
    server: serverRef,
    volumes: volumeRefs
      .optional()
      .describe(
        'Default: every pipeline volume attached to the server but its root volume (Nova never detaches that).',
      ),
    timeout: stepTimeout,
  }),
  z.strictObject({
    action: z.literal('attach-volumes'),
    region: regionSchema,
    server: serverRef,
    volumes: volumeRefs,
    timeout: stepTimeout,
  }),
  z.strictObject({
    action: z.literal('create-server'),
    region: regionSchema,
    server: z.string().min(1).max(255).describe('Name of the new server.'),
    flavor: z.string().min(1).max(255).describe('Flavor id or name in the region.'),
    bootVolume: nameSchema.describe('The pipeline volume the server boots from.'),
    volumes: z
      .array(nameSchema)
      .default([])
      .describe('Further pipeline volumes attached at creation, in order.'),
    metadata: z.record(z.string(), z.string()).default({}),
    availabilityZone: z.string().min(1).max(255).optional(),
    networks: z
      .union([
        z.enum(['none', 'auto']),
        z
          .array(
            z.strictObject({
              network: z.string().min(1).max(255).optional().describe('Network id.'),
              port: z
                .string()
                .min(1)
                .max(255)
                .optional()
                .describe('An existing port id (keeps its address).'),
              fixedIp: z.string().min(1).max(64).optional(),
            }),
          )
          .min(1),
      ])
      .default('none')
      .describe(
        '`none` (no ports), `auto`, or the networks/ports to plug, as `openstack server create --nic` takes them.',
      ),
    timeout: stepTimeout,
  }),
  z.strictObject({
    action: z.literal('set-metadata'),
    region: regionSchema,
    server: serverRef,
    metadata: z.record(z.string(), z.string()),
    timeout: stepTimeout,
  }),
  z.strictObject({
    action: z.literal('wait-status'),
    region: regionSchema,
    server: serverRef.optional(),
    volume: nameSchema.optional().describe('A pipeline volume (its Cinder volume in the region).'),
    status: z
      .string()
      .min(1)
      .describe('e.g. ACTIVE or SHUTOFF for a server, available or in-use for a volume.'),
    timeout: stepTimeout,
  }),
])

/** A runbook step that calls OpenStack instead of running a command. */
export const openstackStepSchema = z.strictObject({
  name: nameSchema,
  openstack: openstackActionSchema,
})
