/** How OpenStack objects and API versions are referred to: ids versus names, gone objects, microversions. */
import { SnapferryError } from '../errors/snapferry-error.js'
import { waitForStatus } from './wait-status.js'
export const UUID_PATTERN = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i

/**
 * The microversion to send: the cloud's pin (`compute_api_version: 2.79` in clouds.yaml) when it is at
 * least what snapferry needs, else what it needs. A bare major version ("3", "2") pins nothing.
 */
export function pickMicroversion(required: string, pinned: string | undefined): string {
  if (!pinned || !/^\d+\.\d+$/.test(pinned)) return required
  const [ra, rb] = required.split('.').map(Number) as [number, number]
  const [pa, pb] = pinned.split('.').map(Number) as [number, number]
  return pa > ra || (pa === ra && pb >= rb) ? pinned : required
}

export interface RefLookup<T> {
  readonly kind: 'volume' | 'server'
  readonly ref: string
  readonly cloud: string
  readonly region: string | undefined
  /** "region 'RegionOne' of cloud 'lab'" */
  readonly where: string
  get(id: string): Promise<T>
  /** Objects whose name is exactly `name`. */
  byName(name: string): Promise<T[]>
}

/** An object by id, else by exact name; a missing or twice-used name is an error that says what to do. */
export async function findByRef<T extends { readonly id: string }>(l: RefLookup<T>): Promise<T> {
  if (UUID_PATTERN.test(l.ref)) {
    try {
      return await l.get(l.ref)
    } catch (e) {
      if (!isNotFound(e)) throw e
    }
  }
  const list = await l.byName(l.ref)
  if (list.length === 1) return list[0] as T
  const details = { cloud: l.cloud, region: l.region, [l.kind]: l.ref }
  if (list.length === 0) {
    throw new SnapferryError('OPENSTACK_NOT_FOUND', `${l.kind} '${l.ref}' not found in ${l.where}`, {
      hint: `check the id or name (\`openstack --os-cloud ${l.cloud}${l.region ? ` --os-region-name ${l.region}` : ''} ${l.kind} list\`) and the project the credentials are scoped to`,
      details,
    })
  }
  throw new SnapferryError(
    'OPENSTACK_AMBIGUOUS',
    `${list.length} ${l.kind}s are named '${l.ref}' in ${l.where}`,
    {
      hint: `use the id instead: ${list.map((x) => x.id).join(', ')}`,
      details: { ...details, ids: list.map((x) => x.id) },
    },
  )
}

export function isNotFound(e: unknown): boolean {
  return e instanceof SnapferryError && e.code === 'OPENSTACK_NOT_FOUND'
}

/** Until the object answers 404. */
export async function waitUntilGone(
  what: string,
  timeoutMs: number,
  get: () => Promise<{ readonly status: string }>,
  signal?: AbortSignal,
): Promise<void> {
  await waitForStatus({
    what: `deletion of ${what}`,
    want: ['gone'],
    failOn: ['error_deleting'],
    timeoutMs,
    read: async () => {
      try {
        return (await get()).status
      } catch (e) {
        if (isNotFound(e)) return 'gone'
        throw e
      }
    },
    status: (s) => s,
    signal,
  })
}
