/**
 * Volumes named the OpenStack way become rbd endpoints before any agent starts: a `cinder` endpoint is
 * looked up in its region (id or name), mapped to `<pool>/volume-<id>` on the region's Ceph cluster,
 * and on the destination side the volume is found again (recorded id, snapferry's metadata mark) or
 * created with the source's size, type and bootable flag. Agents never see OpenStack. docs/OPENSTACK.md.
 */
import type {
  CinderEndpointConfig,
  EndpointConfig,
  OpenStackConfig,
  PipelineConfig,
  RbdEndpointConfig,
  VolumeConfig,
} from '../config/pipeline-config.js'
import { deepFreeze } from '../config/pipeline-config.js'
import { formatBytes } from '../config/units.js'
import { SnapferryError } from '../errors/snapferry-error.js'
import type { Logger } from '../logging/logger.js'
import type { CinderVolume } from './cinder-api.js'
import { loadCloud, pickRegion } from './clouds-config.js'
import { readRecord, resolveDestination } from './destination-volumes.js'
import { OpenStackRun, type ResolvedSide, type ResolvedVolume } from './openstack-run.js'
import { OpenStackSession } from './openstack-session.js'

export interface ResolveOptions {
  /** false for dry runs: nothing is created, a missing destination shows as "to be created". */
  readonly create: boolean
  readonly log?: Logger | undefined
  readonly signal?: AbortSignal | undefined
  readonly env?: NodeJS.ProcessEnv
}

export interface Resolution {
  /** The pipeline with every `cinder` endpoint replaced by its rbd endpoint. */
  readonly cfg: PipelineConfig
  readonly openstack: OpenStackRun | undefined
  /** One line per Cinder volume: "boot: cinder vm1-boot (3f2…, 10 GiB, type rbd) in RegionOne → volumes/volume-3f2…". */
  readonly mapping: readonly string[]
}

const usesOpenStack = (cfg: PipelineConfig) =>
  cfg.openstack !== undefined ||
  cfg.volumes.some((v) => v.source.driver === 'cinder' || v.destination.driver === 'cinder')

/** Placeholder image of a destination a dry run would create: never exists, so plans show "will be created". */
const NOT_YET_CREATED = 'snapferry-volume-not-created-yet'

export async function resolveOpenStack(cfg: PipelineConfig, o: ResolveOptions): Promise<Resolution> {
  if (!usesOpenStack(cfg)) return { cfg, openstack: undefined, mapping: [] }
  const os = cfg.openstack
  if (!os) {
    throw new SnapferryError('CONFIG_INVALID', `${cfg.file}: cinder volumes need an \`openstack:\` section`, {
      hint: 'add `openstack: { cloud: NAME, regions: { RegionOne: { rbd: { conf: … } } } }` (docs/OPENSTACK.md)',
    })
  }
  const cloud = loadCloud({ cloud: os.cloud, env: o.env })
  const session = new OpenStackSession(cloud, { log: o.log })
  try {
    for (const region of Object.keys(os.regions)) pickRegion(cloud, region)
    const recorded = await readRecord(cfg.stateDir)
    // One run for the lookups and for what follows; it learns each volume as it is resolved.
    const resolved = new Map<string, ResolvedVolume>()
    const run = new OpenStackRun(session, os, resolved)
    const mapping: string[] = []
    const volumes: VolumeConfig[] = []
    for (const v of cfg.volumes) {
      const src =
        v.source.driver === 'cinder' ? await resolveSource(run, cfg, v, v.source, o.signal) : undefined
      const dst =
        v.destination.driver === 'cinder'
          ? await resolveDestination(run, cfg, v, v.destination, src?.volume, recorded, o)
          : undefined
      resolved.set(v.name, { name: v.name, source: src, destination: dst })
      const srcEp = src ? rbdEndpoint(cfg, os, src) : v.source
      const dstEp = dst ? rbdEndpoint(cfg, os, dst) : v.destination
      if (src) mapping.push(`${v.name}: source ${describeSide(src)} → ${location(srcEp)}`)
      if (dst) mapping.push(`${v.name}: destination ${describeSide(dst)} → ${location(dstEp)}`)
      volumes.push({ ...v, source: srcEp, destination: dstEp })
    }
    return { cfg: deepFreeze({ ...cfg, volumes }) as PipelineConfig, openstack: run, mapping }
  } catch (e) {
    await session.close()
    throw e
  }
}

function describeSide(s: ResolvedSide): string {
  if (!s.volume) return `new Cinder volume in ${s.region} (created by \`snapferry run\`)`
  const v = s.volume
  return `Cinder volume ${v.name ? `${v.name} (${v.id})` : v.id} in ${s.region}, ${formatBytes(v.size * 2 ** 30)}, type ${v.volume_type ?? '(default)'}, ${v.status}${s.created ? ', created by snapferry' : ''}`
}

function location(ep: EndpointConfig): string {
  return ep.driver === 'rbd'
    ? `rbd ${ep.pool}/${ep.namespace ? `${ep.namespace}/` : ''}${ep.image}`
    : ep.driver
}

/** Cinder's RBD driver names the image `volume-<id>`; a migrated volume keeps its old image (`_name_id`). */
export function rbdImageOf(v: CinderVolume): string {
  const nameId = (v as unknown as Record<string, unknown>)['os-vol-mig-status-attr:name_id']
  return `volume-${typeof nameId === 'string' && nameId ? nameId : v.id}`
}

function rbdEndpoint(cfg: PipelineConfig, os: OpenStackConfig, s: ResolvedSide): RbdEndpointConfig {
  const region = os.regions[s.region]
  if (!region) {
    throw new SnapferryError(
      'CONFIG_INVALID',
      `${cfg.file}: region '${s.region}' has no entry under openstack.regions`,
      {
        hint: `add \`openstack.regions.${s.region}.rbd\` with the conf (and keyring, host) of the Ceph cluster Cinder uses there`,
        details: { region: s.region },
      },
    )
  }
  return {
    driver: 'rbd',
    ...region.rbd,
    image: s.volume ? rbdImageOf(s.volume) : NOT_YET_CREATED,
  }
}

async function resolveSource(
  run: OpenStackRun,
  cfg: PipelineConfig,
  v: VolumeConfig,
  ep: CinderEndpointConfig,
  signal?: AbortSignal,
): Promise<ResolvedSide> {
  if (!ep.volume) {
    throw new SnapferryError(
      'CONFIG_INVALID',
      `${cfg.file}: volume '${v.name}': the source needs \`volume:\` (id or name)`,
      {
        hint: 'name the Cinder volume to move',
        details: { volume: v.name },
      },
    )
  }
  const vol = await run.cinder(ep.region).find(ep.volume, signal)
  if (!['available', 'in-use'].includes(vol.status)) {
    throw new SnapferryError(
      'OPENSTACK_STATUS',
      `source volume ${ep.volume} (${vol.id}) in ${run.cinder(ep.region).where} is ${vol.status}, not available or in-use`,
      {
        hint: 'wait for the operation on it to finish, or fix its state, then run again',
        details: { volume: v.name, id: vol.id, status: vol.status, region: ep.region },
      },
    )
  }
  return { region: ep.region, volume: vol, created: false }
}
