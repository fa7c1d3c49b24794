/**
 * One authenticated conversation with one cloud: Keystone v3 (password or application credential), the
 * token reused until shortly before it expires and renewed once on a 401, endpoints from the token's
 * catalog. The HTTP exchange itself (microversion headers, retries, redacted reporting) is
 * api-exchange.ts; the token and passwords are never logged.
 */
import { SnapferryError } from '../errors/snapferry-error.js'
import { apiError, apiMessage, header } from './api-errors.js'
import {
  type ApiCall,
  ApiExchange,
  type ApiResponse,
  type RequestOptions,
  type SessionOptions,
} from './api-exchange.js'
import type { CloudConfig } from './clouds-config.js'
import { authBody, type Token, tokenFrom, whoAuthenticates } from './keystone-auth.js'
import { findEndpoint, type ServiceKind } from './service-catalog.js'

export type { ApiCall, ApiResponse, RequestOptions, SessionOptions } from './api-exchange.js'

/** Renew this long before the token expires, so a long step never starts with a dying token. */
const RENEW_BEFORE_MS = 120_000

export class OpenStackSession {
  readonly cloud: CloudConfig
  #token: Promise<Token> | undefined
  readonly #http: ApiExchange
  readonly #o: SessionOptions

  constructor(cloud: CloudConfig, o: SessionOptions = {}) {
    this.cloud = cloud
    this.#o = o
    this.#http = new ApiExchange(cloud, o)
  }

  /** Record every API call made while `fn` runs (for a runbook step's result). */
  async recording<T>(fn: () => Promise<T>): Promise<{ value: T; calls: ApiCall[] } | never> {
    const calls: ApiCall[] = []
    const stop = this.#http.listen((c) => calls.push(c))
    try {
      return { value: await fn(), calls }
    } catch (e) {
      throw Object.assign(e as object, { calls })
    } finally {
      stop()
    }
  }

  async close(): Promise<void> {
    await this.#http.close()
  }

  get identityUrl(): string {
    const u = this.cloud.authUrl.replace(/\/+$/, '')
    return /\/v3$/.test(u) ? u : `${u}/v3`
  }

  /** The token's project (for URLs that need it) — authenticates if needed. */
  async projectId(signal?: AbortSignal): Promise<string | undefined> {
    return (await this.#currentToken(signal)).projectId
  }

  async endpoint(kind: ServiceKind, region: string | undefined, signal?: AbortSignal): Promise<string> {
    const t = await this.#currentToken(signal)
    return findEndpoint(t.catalog, { cloud: this.cloud.name, kind, region, interface: this.cloud.interface })
  }

  #currentToken(signal?: AbortSignal): Promise<Token> {
    const t = this.#token
    if (t) {
      return t.then((tok) => (tok.expiresAt - Date.now() > RENEW_BEFORE_MS ? tok : this.#renew(tok, signal)))
    }
    const fresh = this.#authenticate(signal)
    this.#token = fresh
    fresh.catch(() => {
      if (this.#token === fresh) this.#token = undefined
    })
    return fresh
  }

  #renew(old: Token, signal?: AbortSignal): Promise<Token> {
    // Several callers may notice at once: the first replaces the promise, the rest share it.
    return (this.#token ?? Promise.resolve(old)).then((cur) => {
      if (cur !== old) return cur
      const fresh = this.#authenticate(signal)
      this.#token = fresh
      return fresh
    })
  }

  async #authenticate(signal?: AbortSignal): Promise<Token> {
    const url = `${this.identityUrl}/auth/tokens`
    const who = whoAuthenticates(this.cloud.auth)
    const res = await this.#http.send('identity', undefined, 'POST', url, {
      body: authBody(this.cloud.auth),
      ok: [201, 401, 403, 404],
      signal,
      about: who,
    })
    if (res.status !== 201) {
      throw new SnapferryError(
        'OPENSTACK_AUTH_FAILED',
        `cloud '${this.cloud.name}': Keystone at ${this.identityUrl} refused ${who} (HTTP ${res.status}: ${apiMessage(res.body) ?? 'no reason given'})`,
        {
          hint: `check the credentials of cloud '${this.cloud.name}' in ${this.cloud.source} (\`openstack --os-cloud ${this.cloud.name} token issue\` tries the same)`,
          details: { cloud: this.cloud.name, authUrl: this.identityUrl, status: res.status },
        },
      )
    }
    const t = tokenFrom(this.cloud.name, this.identityUrl, header(res.headers, 'x-subject-token'), res.body)
    this.#o.log?.debug(
      { cloud: this.cloud.name, expiresAt: new Date(t.expiresAt).toISOString(), project: t.projectId },
      'keystone token issued',
    )
    return t
  }

  /** A call to a service in a region; the token is added, renewed once on a 401. */
  async request<T = unknown>(
    kind: ServiceKind,
    region: string | undefined,
    method: string,
    path: string,
    o: RequestOptions = {},
  ): Promise<ApiResponse<T>> {
    for (let attempt = 0; ; attempt++) {
      const tok = await this.#currentToken(o.signal)
      const base = findEndpoint(tok.catalog, {
        cloud: this.cloud.name,
        kind,
        region,
        interface: this.cloud.interface,
      })
      const res = await this.#http.send<T>(kind, region, method, `${base}${path}`, {
        ...o,
        ok: [...(o.ok ?? []), 401],
        token: tok.value,
      })
      if (res.status === 401 && attempt === 0 && !(o.ok ?? []).includes(401)) {
        // Revoked or expired early: authenticate again once.
        if (this.#token) await this.#renew(tok, o.signal)
        continue
      }
      if (res.status === 401 && !(o.ok ?? []).includes(401))
        throw apiError(this.cloud.name, kind, region, method, path, res, o.about)
      return res
    }
  }
}
