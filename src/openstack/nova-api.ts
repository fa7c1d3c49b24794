/**
 * The Nova (compute v2.1) calls snapferry makes, in one region of one cloud. Volumes are attached and
 * detached through Nova only: Cinder refuses to delete an attachment Nova owns (OSSN-0092).
 */
import { SnapferryError } from '../errors/snapferry-error.js'
import { findByRef, isNotFound, pickMicroversion, waitUntilGone } from './api-refs.js'
import type { OpenStackSession } from './openstack-session.js'
import { waitForStatus } from './wait-status.js'

export interface NovaServer {
  readonly id: string
  readonly name: string
  readonly status: string
  readonly 'OS-EXT-STS:task_state'?: string | null
  readonly 'os-extended-volumes:volumes_attached'?: readonly { readonly id: string }[]
  readonly metadata: Record<string, string>
  readonly fault?: { readonly message?: string; readonly details?: string }
}

export interface BlockDevice {
  readonly volumeId: string
  readonly bootIndex: number
}

export type NetworkSpec =
  | 'none'
  | 'auto'
  | readonly {
      readonly network?: string | undefined
      readonly port?: string | undefined
      readonly fixedIp?: string | undefined
    }[]

/** The pipeline's networks as Nova's `networks` field. */
export function novaNetworks(n: NetworkSpec): unknown {
  if (n === 'none' || n === 'auto') return n
  return n.map((x) => ({
    ...(x.network ? { uuid: x.network } : {}),
    ...(x.port ? { port: x.port } : {}),
    ...(x.fixedIp ? { fixed_ip: x.fixedIp } : {}),
  }))
}

/** 2.37: `networks: none` (a server without ports); everything else here is older. */
const MICROVERSION = '2.37'

export class NovaApi {
  constructor(
    readonly session: OpenStackSession,
    readonly region: string | undefined,
  ) {}

  get where(): string {
    return `${this.region ? `region '${this.region}' of ` : ''}cloud '${this.session.cloud.name}'`
  }

  async #call<T>(
    method: string,
    path: string,
    body?: unknown,
    about?: string,
    signal?: AbortSignal,
    ok?: number[],
  ) {
    return this.session.request<T>('compute', this.region, method, path, {
      body,
      microversion: pickMicroversion(MICROVERSION, this.session.cloud.computeApiVersion),
      about,
      signal,
      ...(ok ? { ok } : {}),
    })
  }

  async get(id: string, signal?: AbortSignal): Promise<NovaServer> {
    return (
      await this.#call<{ server: NovaServer }>(
        'GET',
        `/servers/${encodeURIComponent(id)}`,
        undefined,
        `server ${id}`,
        signal,
      )
    ).body.server
  }

  /** A server by id or exact name (unique in the project). */
  async find(ref: string, signal?: AbortSignal): Promise<NovaServer> {
    return findByRef({
      kind: 'server',
      ref,
      cloud: this.session.cloud.name,
      region: this.region,
      where: this.where,
      get: (id) => this.get(id, signal),
      byName: async (name) => {
        // Nova's name filter is a regular expression: anchor and escape it.
        const pattern = `^${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`
        return (
          await this.#call<{ servers: NovaServer[] }>(
            'GET',
            `/servers/detail?name=${encodeURIComponent(pattern)}`,
            undefined,
            `server ${name}`,
            signal,
          )
        ).body.servers.filter((s) => s.name === name)
      },
    })
  }

  /** Undefined when no server has that name (for idempotent create and clean-up). */
  async findOptional(ref: string, signal?: AbortSignal): Promise<NovaServer | undefined> {
    try {
      return await this.find(ref, signal)
    } catch (e) {
      if (isNotFound(e)) return undefined
      throw e
    }
  }

  async action(id: string, action: 'os-stop' | 'os-start', signal?: AbortSignal): Promise<void> {
    await this.#call('POST', `/servers/${id}/action`, { [action]: null }, `server ${id}`, signal)
  }

  async attachedVolumes(id: string, signal?: AbortSignal): Promise<string[]> {
    return (await this.attachments(id, signal)).map((a) => a.volumeId)
  }

  async attachments(
    id: string,
    signal?: AbortSignal,
  ): Promise<{ volumeId: string; device: string | null }[]> {
    const r = await this.#call<{ volumeAttachments: { volumeId: string; device?: string | null }[] }>(
      'GET',
      `/servers/${id}/os-volume_attachments`,
      undefined,
      `server ${id}`,
      signal,
    )
    return r.body.volumeAttachments.map((a) => ({ volumeId: a.volumeId, device: a.device ?? null }))
  }

  /**
   * The volume the server boots from, which Nova never detaches: the attachment at the server's root
   * device name (visible to admins), else the one at the first disk (/dev/vda, /dev/sda, /dev/xvda).
   */
  async rootVolume(server: NovaServer, signal?: AbortSignal): Promise<string | undefined> {
    const atts = await this.attachments(server.id, signal)
    const root = (server as unknown as Record<string, unknown>)['OS-EXT-SRV-ATTR:root_device_name']
    const byName = typeof root === 'string' ? atts.find((a) => a.device === root) : undefined
    return (byName ?? atts.find((a) => a.device !== null && /^\/dev\/(x?v|s|h)da$/.test(a.device)))?.volumeId
  }

  async attach(id: string, volumeId: string, signal?: AbortSignal): Promise<void> {
    await this.#call(
      'POST',
      `/servers/${id}/os-volume_attachments`,
      { volumeAttachment: { volumeId } },
      `attaching volume ${volumeId} to server ${id}`,
      signal,
    )
  }

  async detach(id: string, volumeId: string, signal?: AbortSignal): Promise<void> {
    await this.#call(
      'DELETE',
      `/servers/${id}/os-volume_attachments/${volumeId}`,
      undefined,
      `detaching volume ${volumeId} from server ${id}`,
      signal,
    )
  }

  async create(
    s: {
      name: string
      flavorRef: string
      devices: readonly BlockDevice[]
      metadata?: Record<string, string>
      availabilityZone?: string
      networks?: NetworkSpec
    },
    signal?: AbortSignal,
  ): Promise<string> {
    const body = {
      server: {
        name: s.name,
        flavorRef: s.flavorRef,
        networks: novaNetworks(s.networks ?? 'none'),
        ...(s.availabilityZone ? { availability_zone: s.availabilityZone } : {}),
        ...(s.metadata ? { metadata: s.metadata } : {}),
        block_device_mapping_v2: s.devices.map((d) => ({
          uuid: d.volumeId,
          source_type: 'volume',
          destination_type: 'volume',
          boot_index: d.bootIndex,
          delete_on_termination: false,
        })),
      },
    }
    return (
      await this.#call<{ server: { id: string } }>(
        'POST',
        '/servers',
        body,
        `creating server ${s.name}`,
        signal,
      )
    ).body.server.id
  }

  async delete(id: string, signal?: AbortSignal): Promise<void> {
    await this.#call('DELETE', `/servers/${id}`, undefined, `deleting server ${id}`, signal)
  }

  async setMetadata(id: string, metadata: Record<string, string>, signal?: AbortSignal): Promise<void> {
    await this.#call('POST', `/servers/${id}/metadata`, { metadata }, `metadata of server ${id}`, signal)
  }

  async deleteMetadataKey(id: string, key: string, signal?: AbortSignal): Promise<void> {
    await this.#call(
      'DELETE',
      `/servers/${id}/metadata/${encodeURIComponent(key)}`,
      undefined,
      `metadata of server ${id}`,
      signal,
      [404],
    )
  }

  async flavorId(ref: string, signal?: AbortSignal): Promise<string> {
    const list = (
      await this.#call<{ flavors: { id: string; name: string }[] }>(
        'GET',
        '/flavors',
        undefined,
        `flavor ${ref}`,
        signal,
      )
    ).body.flavors
    const f = list.find((x) => x.id === ref) ?? list.find((x) => x.name === ref)
    if (!f) {
      throw new SnapferryError('OPENSTACK_NOT_FOUND', `flavor '${ref}' not found in ${this.where}`, {
        hint: `flavors there: ${list.map((x) => x.name).join(', ') || '(none)'}`,
        details: { cloud: this.session.cloud.name, region: this.region, flavor: ref },
      })
    }
    return f.id
  }

  async waitFor(
    id: string,
    want: readonly string[],
    timeoutMs: number,
    signal?: AbortSignal,
    label?: string,
  ): Promise<NovaServer> {
    return waitForStatus({
      what: `server ${label ?? id} in ${this.where}`,
      want,
      failOn: ['ERROR'].filter((s) => !want.includes(s)),
      timeoutMs,
      // A status is only reached when no task is still running on the server.
      read: () => this.get(id, signal),
      status: (s) => (s['OS-EXT-STS:task_state'] ? `${s.status}/${s['OS-EXT-STS:task_state']}` : s.status),
      reason: (s) => s.fault?.message,
      signal,
    })
  }

  async waitGone(id: string, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    await waitUntilGone(`server ${id} in ${this.where}`, timeoutMs, () => this.get(id, signal), signal)
  }
}
