/**
 * Volumes named the OpenStack way become rbd endpoints before any agent starts: a `cinder` endpoint is
 * looked up in its region (id or name), mapped to `<pool>/volume-<id>` on the region's Ceph cluster,
 * and on the destination side the volume is found again (recorded id, snapferry's metadata mark) or
 * created with the source's size, type and bootable flag. Agents never see OpenStack. docs/OPENSTACK.md.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
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
import { CinderApi, type CinderVolume } from './cinder-api.js'
import { type CloudConfig, loadCloud, pickRegion } from './clouds-config.js'
import { NovaApi } from './nova-api.js'
import { OpenStackSession } from './openstack-session.js'

/** Metadata snapferry puts on the volumes it creates. */
export const MARK = {
  pipeline: 'snapferry-pipeline',
  volume: 'snapferry-volume',
  source: 'snapferry-source',
  state: 'snapferry-state',
} as const

export interface ResolvedSide {
  readonly region: string
  /** Undefined only in a dry run, for a destination that would be created. */
  readonly volume: CinderVolume | undefined
  readonly created: boolean
}

export interface ResolvedVolume {
  readonly name: string
  readonly source: ResolvedSide | undefined
  readonly destination: ResolvedSide | undefined
}

/** The OpenStack side of one run: the cloud's session, per-region APIs, and the resolved volumes. */
export class OpenStackRun {
  readonly #cinder = new Map<string, CinderApi>()
  readonly #nova = new Map<string, NovaApi>()
  constructor(
    readonly session: OpenStackSession,
    readonly config: OpenStackConfig,
    readonly volumes: ReadonlyMap<string, ResolvedVolume>,
  ) {}

  get cloud(): CloudConfig {
    return this.session.cloud
  }

  cinder(region: string): CinderApi {
    const known = this.#cinder.get(region)
    if (known) return known
    const c = new CinderApi(this.session, pickRegion(this.cloud, region))
    this.#cinder.set(region, c)
    return c
  }

  nova(region: string): NovaApi {
    const known = this.#nova.get(region)
    if (known) return known
    const n = new NovaApi(this.session, pickRegion(this.cloud, region))
    this.#nova.set(region, n)
    return n
  }

  /** The Cinder volume of pipeline volume `name` in `region` (its source or its destination side). */
  volumeIn(name: string, region: string): CinderVolume {
    const v = this.volumes.get(name)
    const side = [v?.source, v?.destination].find((s) => s?.region === region)
    if (!v || !side?.volume) {
      throw new SnapferryError(
        'CONFIG_INVALID',
        `volume '${name}' has no Cinder volume in region '${region}' in this pipeline`,
        {
          hint: 'name a pipeline volume whose source or destination is a `driver: cinder` endpoint in that region',
          details: { volume: name, region },
        },
      )
    }
    return side.volume
  }

  async close(): Promise<void> {
    await this.session.close()
  }
}

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
    const run = new OpenStackRun(session, os, new Map())
    const resolved = new Map<string, ResolvedVolume>()
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
    const openstack = new OpenStackRun(session, os, resolved)
    return { cfg: deepFreeze({ ...cfg, volumes }) as PipelineConfig, openstack, mapping }
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

interface Record_ {
  readonly [volume: string]: { readonly region: string; readonly id: string }
}

const recordFile = (stateDir: string) => path.join(stateDir, 'openstack-volumes.json')

async function readRecord(stateDir: string): Promise<Record_> {
  try {
    return JSON.parse(await readFile(recordFile(stateDir), 'utf8')) as Record_
  } catch {
    return {}
  }
}

async function writeRecord(stateDir: string, r: Record_): Promise<void> {
  await mkdir(stateDir, { recursive: true })
  await writeFile(recordFile(stateDir), `${JSON.stringify(r, null, 2)}\n`)
}

async function resolveDestination(
  run: OpenStackRun,
  cfg: PipelineConfig,
  v: VolumeConfig,
  ep: CinderEndpointConfig,
  source: CinderVolume | undefined,
  recorded: Record_,
  o: ResolveOptions,
): Promise<ResolvedSide> {
  const cinder = run.cinder(ep.region)
  if (ep.volume) {
    const vol = await cinder.find(ep.volume, o.signal)
    if (vol.attachments.length > 0 && vol.metadata?.[MARK.pipeline] !== cfg.name) {
      throw new SnapferryError(
        'VOLUME_EXISTS',
        `destination volume ${ep.volume} (${vol.id}) in ${cinder.where} is attached to a server; refusing to write into it`,
        {
          hint: 'detach it, or let snapferry create the destination volume',
          details: { volume: v.name, id: vol.id },
        },
      )
    }
    return { region: ep.region, volume: vol, created: false }
  }
  // Found again: the id this pipeline recorded, or snapferry's mark (the record may be lost).
  const rec = recorded[v.name]
  if (rec && rec.region === ep.region) {
    try {
      const vol = await cinder.get(rec.id, o.signal)
      if (vol.status === 'creating')
        await cinder.waitFor(vol.id, ['available'], run.config.waitTimeout, o.signal)
      return { region: ep.region, volume: await cinder.get(rec.id, o.signal), created: true }
    } catch (e) {
      if (!(e instanceof SnapferryError && e.code === 'OPENSTACK_NOT_FOUND')) throw e
    }
  }
  const marked = (await cinder.findByMetadata(MARK.pipeline, cfg.name, o.signal)).filter(
    (x) => x.metadata[MARK.volume] === v.name && x.status !== 'deleting',
  )
  if (marked.length > 1) {
    throw new SnapferryError(
      'OPENSTACK_AMBIGUOUS',
      `${marked.length} volumes in ${cinder.where} carry snapferry's mark for pipeline '${cfg.name}' volume '${v.name}'`,
      {
        hint: `delete the stray ones or name the right one with \`volume:\`: ${marked.map((x) => x.id).join(', ')}`,
      },
    )
  }
  if (marked[0]) {
    await writeRecord(cfg.stateDir, {
      ...(await readRecord(cfg.stateDir)),
      [v.name]: { region: ep.region, id: marked[0].id },
    })
    return { region: ep.region, volume: marked[0], created: true }
  }
  if (!o.create) return { region: ep.region, volume: undefined, created: false }
  if (!source) {
    throw new SnapferryError(
      'CONFIG_INVALID',
      `${cfg.file}: volume '${v.name}': a created Cinder destination needs a Cinder source`,
      {
        hint: 'give the destination `volume:` (an existing volume of the right size)',
      },
    )
  }
  const name = ep.name ?? source.name ?? `snapferry-${cfg.name}-${v.name}`
  const created = await cinder.create(
    {
      name,
      size: source.size,
      volumeType: ep.volumeType ?? source.volume_type,
      description: `copy of ${source.id} from ${sourceRegion(v)} by snapferry pipeline ${cfg.name}`,
      availabilityZone: ep.availabilityZone,
      metadata: {
        [MARK.pipeline]: cfg.name,
        [MARK.volume]: v.name,
        [MARK.source]: `${run.cloud.name}/${sourceRegion(v)}/${source.id}`,
        [MARK.state]: 'copying',
      },
    },
    o.signal,
  )
  // Recorded before waiting: a crash now must not leave a volume nobody knows about.
  await writeRecord(cfg.stateDir, {
    ...(await readRecord(cfg.stateDir)),
    [v.name]: { region: ep.region, id: created.id },
  })
  o.log?.info(
    { volume: v.name, id: created.id, region: ep.region, size: source.size },
    'destination volume created',
  )
  const ready = await cinder.waitFor(created.id, ['available'], run.config.waitTimeout, o.signal, name)
  if (source.bootable === 'true') await cinder.setBootable(ready.id, true, o.signal)
  if (source.volume_image_metadata && Object.keys(source.volume_image_metadata).length > 0) {
    await cinder
      .setImageMetadata(ready.id, source.volume_image_metadata, o.signal)
      .catch((e: unknown) => o.log?.warn({ err: e, volume: v.name }, 'copying the image metadata failed'))
  }
  return { region: ep.region, volume: await cinder.get(ready.id, o.signal), created: true }
}

function sourceRegion(v: VolumeConfig): string {
  return v.source.driver === 'cinder' ? v.source.region : 'outside OpenStack'
}

/** Mark the destination volumes after the cutover: moved, rolled back (do not use), or failed. */
export async function markDestinations(
  run: OpenStackRun,
  state: 'moved' | 'rolled-back' | 'cutover-failed',
  log?: Logger,
): Promise<void> {
  for (const v of run.volumes.values()) {
    const d = v.destination
    if (!d?.volume) continue
    await run
      .cinder(d.region)
      .setMetadata(d.volume.id, { [MARK.state]: state }, undefined)
      .catch((e: unknown) => log?.warn({ err: e, volume: v.name }, 'marking the destination volume failed'))
  }
}
