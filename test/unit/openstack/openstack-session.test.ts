/**
 * The session's own logic — token reuse, renewal on a 401 and before expiry, retries of transient
 * failures, never repeating a POST that may have landed, no secret in recorded calls — against a local
 * HTTP stand-in (the real Keystone, Cinder and Nova are exercised in test/openstack/).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { SnapferryError } from '../../../src/errors/snapferry-error.js'
import { pickMicroversion } from '../../../src/openstack/api-refs.js'
import type { CloudConfig } from '../../../src/openstack/clouds-config.js'
import { OpenStackSession } from '../../../src/openstack/openstack-session.js'

type Handler = (req: IncomingMessage, body: string, res: ServerResponse) => void

let server: Server | undefined
afterEach(async () => {
  const s = server
  server = undefined
  if (!s) return
  s.closeAllConnections()
  await new Promise((r) => s.close(r))
})

async function stub(handler: Handler): Promise<string> {
  const s = createServer((req, res) => {
    let body = ''
    req.on('data', (c) => (body += c))
    req.on('end', () => handler(req, body, res))
  })
  server = s
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}`
}

const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
  res.writeHead(status, { 'content-type': 'application/json', ...headers })
  res.end(JSON.stringify(body))
}

function cloud(url: string): CloudConfig {
  return {
    name: 'stub',
    source: 'test',
    authUrl: `${url}/v3`,
    auth: { type: 'password', username: 'u', password: 'hunter2', projectName: 'p' },
    regions: ['RegionOne'],
    interface: 'public',
    verify: true,
  }
}

/** Keystone + a compute endpoint; counts token issues, can expire tokens early. */
function keystoneAnd(compute: Handler, o: { expiresInMs?: number; revoke?: () => boolean } = {}) {
  const state = { issued: 0, url: '' }
  const handler: Handler = (req, body, res) => {
    if (req.url === '/v3/auth/tokens' && req.method === 'POST') {
      state.issued++
      const sent = JSON.parse(body)
      if (sent.auth.identity.password.user.password !== 'hunter2')
        return json(res, 401, { error: { message: 'bad' } })
      return json(
        res,
        201,
        {
          token: {
            expires_at: new Date(Date.now() + (o.expiresInMs ?? 3_600_000)).toISOString(),
            project: { id: 'proj' },
            catalog: [
              {
                type: 'compute',
                endpoints: [{ region_id: 'RegionOne', interface: 'public', url: `${state.url}/compute` }],
              },
            ],
          },
        },
        { 'x-subject-token': `tok${state.issued}` },
      )
    }
    if (o.revoke?.() && req.headers['x-auth-token'] === 'tok1')
      return json(res, 401, { error: { message: 'expired' } })
    compute(req, body, res)
  }
  return { state, handler }
}

describe('OpenStack session', () => {
  it('reuses one token for many calls and sends the microversion headers', async () => {
    const seen: (string | undefined)[] = []
    const k = keystoneAnd((req, _b, res) => {
      seen.push(req.headers['x-openstack-nova-api-version'] as string)
      json(res, 200, { ok: true })
    })
    k.state.url = await stub(k.handler)
    const s = new OpenStackSession(cloud(k.state.url), { backoffMs: 1 })
    for (let i = 0; i < 3; i++)
      await s.request('compute', 'RegionOne', 'GET', '/servers', { microversion: '2.37' })
    await s.close()
    expect(k.state.issued).toBe(1)
    expect(seen).toEqual(['2.37', '2.37', '2.37'])
  })

  it('authenticates again once when a token is refused, and before one expires', async () => {
    let revoked = false
    const k = keystoneAnd((_r, _b, res) => json(res, 200, {}), { revoke: () => revoked })
    k.state.url = await stub(k.handler)
    const s = new OpenStackSession(cloud(k.state.url), { backoffMs: 1 })
    await s.request('compute', 'RegionOne', 'GET', '/a')
    revoked = true
    await s.request('compute', 'RegionOne', 'GET', '/b')
    expect(k.state.issued).toBe(2)
    await s.close()

    const soon = keystoneAnd((_r, _b, res) => json(res, 200, {}), { expiresInMs: 60_000 })
    soon.state.url = await stub(soon.handler)
    const s2 = new OpenStackSession(cloud(soon.state.url), { backoffMs: 1 })
    await s2.request('compute', 'RegionOne', 'GET', '/a')
    await s2.request('compute', 'RegionOne', 'GET', '/b')
    // Each token expires within the renewal margin, so each call starts with a fresh one.
    expect(soon.state.issued).toBe(2)
    await s2.close()
  })

  it('retries 503 with backoff; does not repeat a POST after a 502; names cloud, region and call', async () => {
    let gets = 0
    let posts = 0
    const k = keystoneAnd((req, _b, res) => {
      if (req.method === 'GET') return ++gets < 3 ? json(res, 503, { message: 'busy' }) : json(res, 200, {})
      posts++
      json(res, 502, { computeFault: { message: 'bad gateway' } })
    })
    k.state.url = await stub(k.handler)
    const s = new OpenStackSession(cloud(k.state.url), { backoffMs: 1 })
    await s.request('compute', 'RegionOne', 'GET', '/servers')
    expect(gets).toBe(3)
    const err = await s
      .request('compute', 'RegionOne', 'POST', '/servers', {
        body: { server: {} },
        about: 'creating server vm1',
      })
      .catch((e) => e)
    expect(posts).toBe(1)
    expect(err).toBeInstanceOf(SnapferryError)
    expect((err as SnapferryError).code).toBe('OPENSTACK_API_ERROR')
    expect((err as Error).message).toBe(
      `cloud 'stub' region 'RegionOne': creating server vm1: compute POST ${k.state.url}/compute/servers failed with HTTP 502: bad gateway`,
    )
    await s.close()
  })

  it('reports bad credentials as such, and records calls without the password', async () => {
    const k = keystoneAnd((_r, _b, res) => json(res, 200, {}))
    k.state.url = await stub(k.handler)
    const bad = new OpenStackSession({
      ...cloud(k.state.url),
      auth: { type: 'password', username: 'u', password: 'nope', projectName: 'p' },
    })
    const { calls } = await bad
      .recording(() => bad.request('compute', 'RegionOne', 'GET', '/servers'))
      .catch((e: { calls: unknown[]; code: string; message: string }) => {
        expect(e.code).toBe('OPENSTACK_AUTH_FAILED')
        expect(e.message).toBe(`cloud 'stub': Keystone at ${k.state.url}/v3 refused user 'u' (HTTP 401: bad)`)
        return { calls: e.calls }
      })
    expect(JSON.stringify(calls)).not.toContain('nope')
    expect(JSON.stringify(calls)).toContain('***')
    await bad.close()
  })

  it('picks the cloud-pinned microversion only when it is new enough', () => {
    expect(pickMicroversion('2.37', undefined)).toBe('2.37')
    expect(pickMicroversion('2.37', '2')).toBe('2.37')
    expect(pickMicroversion('2.37', '2.79')).toBe('2.79')
    expect(pickMicroversion('2.37', '2.9')).toBe('2.37')
    expect(pickMicroversion('3.0', '3.27')).toBe('3.27')
  })
})
