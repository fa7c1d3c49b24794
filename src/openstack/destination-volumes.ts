/**
 * The destination side of a `cinder` volume: an existing volume named by the pipeline, the one this
 * pipeline created before (recorded id, or snapferry's metadata mark), or a new one with the source's
 * size, type and bootable flag. The id is recorded before waiting, so a crash never makes a second.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import type { CinderEndpointConfig, PipelineConfig, VolumeConfig } from '../config/pipeline-config.js'
import { SnapferryError } from '../errors/snapferry-error.js'
import type { CinderVolume } from './cinder-api.js'
import { MARK, type OpenStackRun, type ResolvedSide } from './openstack-run.js'
import type { ResolveOptions } from './resolve-volumes.js'

export interface Record_ {
  readonly [volume: string]: { readonly region: string; readonly id: string }
}

const recordFile = (stateDir: string) => path.join(stateDir, 'openstack-volumes.json')

export async function readRecord(stateDir: string): Promise<Record_> {
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

export async function resolveDestination(
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
      return {
        region: ep.region,
        volume: usable(await cinder.get(rec.id, o.signal), v.name, cinder.where),
        created: true,
      }
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
    return { region: ep.region, volume: usable(marked[0], v.name, cinder.where), created: true }
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

/**
 * A destination volume snapferry made earlier is used again only while Cinder considers it healthy: an
 * image written into a volume in `error` would be data Cinder does not know about.
 */
function usable(vol: CinderVolume, volume: string, where: string): CinderVolume {
  if (['available', 'in-use', 'reserved', 'attaching', 'detaching'].includes(vol.status)) return vol
  throw new SnapferryError(
    'OPENSTACK_STATUS',
    `destination volume ${vol.name ?? vol.id} (${vol.id}) that snapferry created in ${where} is ${vol.status}`,
    {
      hint: `delete it (\`openstack volume delete ${vol.id}\`) and run again: snapferry then creates a new one`,
      details: { volume, id: vol.id, status: vol.status },
    },
  )
}
