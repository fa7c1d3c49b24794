/** The Cinder (block storage v3) calls snapferry makes, in one region of one cloud. */
import { findByRef, pickMicroversion, waitUntilGone } from './api-refs.js'
import type { OpenStackSession } from './openstack-session.js'
import { waitForStatus } from './wait-status.js'

export interface CinderVolume {
  readonly id: string
  readonly name: string | null
  readonly size: number
  readonly status: string
  readonly volume_type: string | null
  readonly bootable: string
  readonly availability_zone?: string
  readonly attachments: readonly {
    readonly server_id: string
    readonly attachment_id?: string
    readonly device?: string
  }[]
  readonly metadata: Record<string, string>
  readonly volume_image_metadata?: Record<string, string>
  readonly 'os-vol-host-attr:host'?: string | null
}

/** 3.0 is enough for everything here; manage-existing listing needs 3.8. */
const MICROVERSION = '3.0'

export class CinderApi {
  constructor(
    readonly session: OpenStackSession,
    readonly region: string | undefined,
  ) {}

  get where(): string {
    return `${this.region ? `region '${this.region}' of ` : ''}cloud '${this.session.cloud.name}'`
  }

  async #call<T>(method: string, path: string, body?: unknown, about?: string, signal?: AbortSignal) {
    return this.session.request<T>('block-storage', this.region, method, path, {
      body,
      microversion: pickMicroversion(MICROVERSION, this.session.cloud.volumeApiVersion),
      about,
      signal,
    })
  }

  async get(id: string, signal?: AbortSignal): Promise<CinderVolume> {
    return (
      await this.#call<{ volume: CinderVolume }>(
        'GET',
        `/volumes/${encodeURIComponent(id)}`,
        undefined,
        `volume ${id}`,
        signal,
      )
    ).body.volume
  }

  /** A volume by id or by exact name (a name must be unique in the project). */
  async find(ref: string, signal?: AbortSignal): Promise<CinderVolume> {
    return findByRef({
      kind: 'volume',
      ref,
      cloud: this.session.cloud.name,
      region: this.region,
      where: this.where,
      get: (id) => this.get(id, signal),
      byName: async (name) =>
        (
          await this.#call<{ volumes: CinderVolume[] }>(
            'GET',
            `/volumes/detail?name=${encodeURIComponent(name)}`,
            undefined,
            `volume ${name}`,
            signal,
          )
        ).body.volumes.filter((v) => v.name === name),
    })
  }

  /** Volumes carrying a metadata key/value (snapferry's marks), filtered here so any microversion works. */
  async findByMetadata(key: string, value: string, signal?: AbortSignal): Promise<CinderVolume[]> {
    const all = (
      await this.#call<{ volumes: CinderVolume[] }>('GET', '/volumes/detail', undefined, undefined, signal)
    ).body.volumes
    return all.filter((v) => v.metadata?.[key] === value)
  }

  async create(
    v: {
      name: string
      size: number
      volumeType?: string | null
      description?: string
      metadata?: Record<string, string>
      availabilityZone?: string
    },
    signal?: AbortSignal,
  ): Promise<CinderVolume> {
    const body = {
      volume: {
        name: v.name,
        size: v.size,
        ...(v.volumeType ? { volume_type: v.volumeType } : {}),
        ...(v.description ? { description: v.description } : {}),
        ...(v.metadata ? { metadata: v.metadata } : {}),
        ...(v.availabilityZone ? { availability_zone: v.availabilityZone } : {}),
      },
    }
    return (
      await this.#call<{ volume: CinderVolume }>(
        'POST',
        '/volumes',
        body,
        `creating volume ${v.name}`,
        signal,
      )
    ).body.volume
  }

  /** Adopt an RBD image already in the backend's pool ("manage existing"); Cinder renames it to volume-<id>. */
  async manageExisting(
    v: {
      host: string
      sourceName: string
      name: string
      volumeType?: string | null
      metadata?: Record<string, string>
    },
    signal?: AbortSignal,
  ): Promise<CinderVolume> {
    const body = {
      volume: {
        host: v.host,
        ref: { 'source-name': v.sourceName },
        name: v.name,
        ...(v.volumeType ? { volume_type: v.volumeType } : {}),
        ...(v.metadata ? { metadata: v.metadata } : {}),
      },
    }
    return (
      await this.#call<{ volume: CinderVolume }>(
        'POST',
        '/os-volume-manage',
        body,
        `managing image ${v.sourceName}`,
        signal,
      )
    ).body.volume
  }

  async delete(id: string, signal?: AbortSignal): Promise<void> {
    await this.#call('DELETE', `/volumes/${id}`, undefined, `deleting volume ${id}`, signal)
  }

  async setMetadata(id: string, metadata: Record<string, string>, signal?: AbortSignal): Promise<void> {
    await this.#call('POST', `/volumes/${id}/metadata`, { metadata }, `metadata of volume ${id}`, signal)
  }

  async setBootable(id: string, bootable: boolean, signal?: AbortSignal): Promise<void> {
    await this.#call(
      'POST',
      `/volumes/${id}/action`,
      { 'os-set_bootable': { bootable } },
      `volume ${id}`,
      signal,
    )
  }

  async setImageMetadata(id: string, metadata: Record<string, string>, signal?: AbortSignal): Promise<void> {
    await this.#call(
      'POST',
      `/volumes/${id}/action`,
      { 'os-set_image_metadata': { metadata } },
      `volume ${id}`,
      signal,
    )
  }

  async waitFor(
    id: string,
    want: readonly string[],
    timeoutMs: number,
    signal?: AbortSignal,
    label?: string,
  ): Promise<CinderVolume> {
    return waitForStatus({
      what: `volume ${label ?? id} in ${this.where}`,
      want,
      failOn: ['error', 'error_deleting', 'error_managing', 'error_extending'].filter(
        (s) => !want.includes(s),
      ),
      timeoutMs,
      read: () => this.get(id, signal),
      status: (v) => v.status,
      signal,
    })
  }

  /** Until GET says 404. */
  async waitGone(id: string, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    await waitUntilGone(`volume ${id} in ${this.where}`, timeoutMs, () => this.get(id, signal), signal)
  }
}
