import { describe, expect, it } from 'vitest'
import type { SnapferryError } from '../../../src/errors/snapferry-error.js'
import { apiMessage } from '../../../src/openstack/api-errors.js'
import { redact } from '../../../src/openstack/redact.js'
import { type CatalogService, findEndpoint } from '../../../src/openstack/service-catalog.js'

const catalog: CatalogService[] = [
  {
    type: 'volumev3',
    endpoints: [
      { region_id: 'RegionOne', interface: 'public', url: 'http://c1/v3/p/' },
      { region_id: 'RegionTwo', interface: 'public', url: 'http://c2/v3/p' },
    ],
  },
  { type: 'compute', endpoints: [{ region_id: 'RegionOne', interface: 'internal', url: 'http://n1/v2.1' }] },
]

const q = { cloud: 'lab', interface: 'public' as const }

function err(fn: () => unknown): string {
  try {
    fn()
  } catch (e) {
    return `${(e as SnapferryError).code}: ${(e as Error).message}`
  }
  return 'no error'
}

describe('service catalog', () => {
  it('finds block storage under volumev3 when block-storage is absent, per region, without a trailing slash', () => {
    expect(findEndpoint(catalog, { ...q, kind: 'block-storage', region: 'RegionOne' })).toBe('http://c1/v3/p')
    expect(findEndpoint(catalog, { ...q, kind: 'block-storage', region: 'RegionTwo' })).toBe('http://c2/v3/p')
  })

  it('prefers block-storage over volumev3', () => {
    const both: CatalogService[] = [
      ...catalog,
      {
        type: 'block-storage',
        endpoints: [{ region_id: 'RegionOne', interface: 'public', url: 'http://bs1' }],
      },
    ]
    expect(findEndpoint(both, { ...q, kind: 'block-storage', region: 'RegionOne' })).toBe('http://bs1')
  })

  it('tells an unknown region from a missing interface, and lists what exists', () => {
    expect(err(() => findEndpoint(catalog, { ...q, kind: 'compute', region: 'RegionThree' }))).toBe(
      "OPENSTACK_REGION_UNKNOWN: cloud 'lab' has no region 'RegionThree' (its catalog has RegionOne, RegionTwo)",
    )
    try {
      findEndpoint(catalog, { ...q, kind: 'compute', region: 'RegionOne' })
    } catch (e) {
      expect((e as SnapferryError).code).toBe('OPENSTACK_ENDPOINT_NOT_FOUND')
      expect((e as SnapferryError).hint).toContain('compute RegionOne/internal')
    }
  })
})

describe('secrets and messages', () => {
  it('masks passwords, secrets, tokens and adminPass at any depth, keeps the rest', () => {
    expect(
      redact({
        auth: { identity: { password: { user: { name: 'u', password: 'p' } } } },
        server: { adminPass: 'x', name: 'vm' },
        application_credential: { id: 'i', secret: 's' },
        list: [{ token: 't' }],
      }),
    ).toEqual({
      auth: { identity: { password: { user: { name: 'u', password: '***' } } } },
      server: { adminPass: '***', name: 'vm' },
      application_credential: { id: 'i', secret: '***' },
      list: [{ token: '***' }],
    })
  })

  it("reads Nova's, Cinder's and Keystone's error bodies", () => {
    expect(apiMessage({ itemNotFound: { code: 404, message: 'Volume x could not be found.' } })).toBe(
      'Volume x could not be found.',
    )
    expect(
      apiMessage({ error: { code: 401, message: 'The request you have made requires authentication.' } }),
    ).toBe('The request you have made requires authentication.')
    expect(apiMessage('<html>')).toBeUndefined()
  })
})
