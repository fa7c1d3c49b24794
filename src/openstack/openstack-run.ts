/** The OpenStack side of one run: the cloud's session, per-region APIs, the resolved volumes, their marks. */

import type { OpenStackConfig } from '../config/pipeline-config.js'
import { SnapferryError } from '../errors/snapferry-error.js'
import type { Logger } from '../logging/logger.js'
import { CinderApi, type CinderVolume } from './cinder-api.js'
import { type CloudConfig, pickRegion } from './clouds-config.js'
import { NovaApi } from './nova-api.js'
import type { OpenStackSession } from './openstack-session.js'

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
