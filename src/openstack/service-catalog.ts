/**
 * Finding a service's endpoint in a Keystone v3 token's catalog (pure). Block storage is registered as
 * `block-storage` and/or `volumev3` (and `volume` on old clouds): try them in that order. Errors list
 * what the catalog does have, so a wrong region or interface is obvious.
 */
import { SnapferryError } from '../errors/snapferry-error.js'
import type { EndpointInterface } from './clouds-config.js'

export interface CatalogEndpoint {
  readonly region_id?: string
  readonly region?: string
  readonly interface: string
  readonly url: string
}
export interface CatalogService {
  readonly type: string
  readonly name?: string
  readonly endpoints: readonly CatalogEndpoint[]
}

export type ServiceKind = 'block-storage' | 'compute' | 'identity'

/** Service types to look for, most specific first. */
export const SERVICE_TYPES: Record<ServiceKind, readonly string[]> = {
  'block-storage': ['block-storage', 'volumev3', 'volume'],
  compute: ['compute'],
  identity: ['identity'],
}

export interface EndpointQuery {
  readonly cloud: string
  readonly kind: ServiceKind
  readonly region: string | undefined
  readonly interface: EndpointInterface
}

const regionOf = (e: CatalogEndpoint) => e.region_id ?? e.region

/** The endpoint URL (without a trailing slash) or an error naming cloud, region, service and what exists. */
export function findEndpoint(catalog: readonly CatalogService[], q: EndpointQuery): string {
  const types = SERVICE_TYPES[q.kind]
  for (const type of types) {
    const svc = catalog.find((s) => s.type === type)
    if (!svc) continue
    const e = svc.endpoints.find(
      (x) => x.interface === q.interface && (q.region === undefined || regionOf(x) === q.region),
    )
    if (e) return e.url.replace(/\/+$/, '')
  }
  const offered = catalog
    .filter((s) => types.includes(s.type))
    .flatMap((s) => s.endpoints.map((e) => `${s.type} ${regionOf(e)}/${e.interface}`))
  const regions = [...new Set(catalog.flatMap((s) => s.endpoints.map(regionOf)).filter(Boolean))]
  const unknownRegion = q.region !== undefined && !regions.includes(q.region)
  return fail(
    new SnapferryError(
      unknownRegion ? 'OPENSTACK_REGION_UNKNOWN' : 'OPENSTACK_ENDPOINT_NOT_FOUND',
      unknownRegion
        ? `cloud '${q.cloud}' has no region '${q.region}' (its catalog has ${regions.join(', ') || 'no endpoints'})`
        : `cloud '${q.cloud}' has no ${q.interface} ${q.kind} endpoint in region '${q.region ?? '(any)'}'`,
      {
        hint: unknownRegion
          ? 'fix the region name in the pipeline (regions are case-sensitive)'
          : offered.length
            ? `the catalog offers: ${offered.join(', ')}; set \`interface:\` in clouds.yaml or pick another region`
            : `the catalog has no ${types.join('/')} service at all: is ${q.kind} deployed, and may this user see it?`,
        details: { cloud: q.cloud, region: q.region, service: q.kind, interface: q.interface },
      },
    ),
  )
}

function fail(e: Error): never {
  throw e
}
