/**
 * One authenticated conversation with one cloud: Keystone v3 (password or application credential), the
 * token reused until shortly before it expires and renewed once on a 401, endpoints from the token's
 * catalog, microversion headers, transient failures retried with backoff. HTTP through undici. Every
 * call is reported to `onCall` with its body redacted; the token and passwords are never logged.
 */
import { readFileSync } from 'node:fs'
import { Agent, type Dispatcher, request } from 'undici'
import { SnapferryError } from '../errors/snapferry-error.js'
import type { Logger } from '../logging/logger.js'
import { apiError, apiMessage, header } from './api-errors.js'
import type { CloudConfig } from './clouds-config.js'
import { authBody, type Token, tokenFrom, whoAuthenticates } from './keystone-auth.js'
import { redact } from './redact.js'
import { findEndpoint, type ServiceKind } from './service-catalog.js'

export interface ApiCall {
  readonly cloud: string
  readonly region: string | undefined
  readonly service: ServiceKind
  readonly method: string
  readonly url: string
  readonly status: number | null
  readonly durationMs: number
  readonly requestId?: string | undefined
  readonly request?: unknown
  readonly response?: unknown
}

export interface RequestOptions {
  readonly body?: unknown
  /** e.g. '3.27' for block storage, '2.37' for compute. */
  readonly microversion?: string
  /** Statuses that are not errors (default: 2xx). */
  readonly ok?: readonly number[]
  readonly signal?: AbortSignal | undefined
  /** What the call is about, for error messages: "volume vm1-boot". */
  readonly about?: string
}

export interface ApiResponse<T> {
  readonly status: number
  readonly body: T
  readonly headers: Record<string, string | string[] | undefined>
}

export interface SessionOptions {
  readonly log?: Logger | undefined
  /** Attempts for a transient failure (default 5) and the first backoff (default 500 ms, doubling). */
  readonly attempts?: number
  readonly backoffMs?: number
  /** Per-request limit for headers and body (default 60 s). */
  readonly timeoutMs?: number
}

/** Renew this long before the token expires, so a long step never starts with a dying token. */
const RENEW_BEFORE_MS = 120_000
const IDEMPOTENT = new Set(['GET', 'HEAD', 'PUT', 'DELETE'])

export class OpenStackSession {
  readonly cloud: CloudConfig
  #token: Promise<Token> | undefined
  readonly #dispatcher: Dispatcher
  readonly #o: SessionOptions
  readonly #listeners = new Set<(c: ApiCall) => void>()

  constructor(cloud: CloudConfig, o: SessionOptions = {}) {
    this.cloud = cloud
    this.#o = o
    this.#dispatcher = new Agent({
      connect: {
        timeout: 20_000,
        rejectUnauthorized: cloud.verify,
        ...(cloud.cacert ? { ca: readFileSync(cloud.cacert) } : {}),
      },
      headersTimeout: o.timeoutMs ?? 60_000,
      bodyTimeout: o.timeoutMs ?? 60_000,
    })
  }

  /** Record every API call made while `fn` runs (for a runbook step's result). */
  async recording<T>(fn: () => Promise<T>): Promise<{ value: T; calls: ApiCall[] } | never> {
    const calls: ApiCall[] = []
    const l = (c: ApiCall) => calls.push(c)
    this.#listeners.add(l)
    try {
      return { value: await fn(), calls }
    } catch (e) {
      throw Object.assign(e as object, { calls })
    } finally {
      this.#listeners.delete(l)
    }
  }

  async close(): Promise<void> {
    await this.#dispatcher.close()
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
    const res = await this.#send('identity', undefined, 'POST', url, {
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
      const res = await this.#send<T>(kind, region, method, `${base}${path}`, {
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

  async #send<T>(
    service: ServiceKind,
    region: string | undefined,
    method: string,
    url: string,
    o: RequestOptions & { token?: string },
  ): Promise<ApiResponse<T>> {
    const attempts = this.#o.attempts ?? 5
    const headers: Record<string, string> = { accept: 'application/json' }
    if (o.body !== undefined) headers['content-type'] = 'application/json'
    if (o.token) headers['x-auth-token'] = o.token
    if (o.microversion) {
      const svc = service === 'block-storage' ? 'volume' : service
      headers['openstack-api-version'] = `${svc} ${o.microversion}`
      if (service === 'compute') headers['x-openstack-nova-api-version'] = o.microversion
    }
    for (let attempt = 1; ; attempt++) {
      const t0 = performance.now()
      let status: number | null = null
      try {
        const res = await request(url, {
          method: method as Dispatcher.HttpMethod,
          headers,
          body: o.body === undefined ? null : JSON.stringify(o.body),
          dispatcher: this.#dispatcher,
          signal: o.signal ?? null,
        })
        status = res.statusCode
        const text = await res.body.text()
        let body: unknown = text
        try {
          body = text ? JSON.parse(text) : {}
        } catch {}
        const call: ApiCall = {
          cloud: this.cloud.name,
          region,
          service,
          method,
          url,
          status,
          durationMs: performance.now() - t0,
          requestId:
            header(res.headers, 'x-openstack-request-id') ?? header(res.headers, 'x-compute-request-id'),
          ...(o.body === undefined ? {} : { request: redact(o.body) }),
          response: redact(body),
        }
        this.#report(call)
        const ok = (status >= 200 && status < 300) || (o.ok ?? []).includes(status)
        const retryable =
          status === 429 || status === 503 || (IDEMPOTENT.has(method) && (status === 502 || status === 504))
        if (!ok && retryable && attempt < attempts) {
          await this.#backoff(attempt, header(res.headers, 'retry-after'), o.signal, `HTTP ${status}`, call)
          continue
        }
        const response = { status, body: body as T, headers: res.headers as ApiResponse<T>['headers'] }
        if (!ok) throw apiError(this.cloud.name, service, region, method, url, response, o.about)
        return response
      } catch (e) {
        if (e instanceof SnapferryError) throw e
        if (o.signal?.aborted)
          throw new SnapferryError('ABORTED', `${method} ${url} interrupted`, { cause: e })
        const code = (e as { code?: string }).code ?? ''
        // A request that may have reached the service is only repeated when repeating it is harmless.
        const safe =
          IDEMPOTENT.has(method) || code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EAI_AGAIN'
        this.#report({
          cloud: this.cloud.name,
          region,
          service,
          method,
          url,
          status,
          durationMs: performance.now() - t0,
          response: { error: String((e as Error).message) },
        })
        if (safe && attempt < attempts) {
          await this.#backoff(attempt, undefined, o.signal, code || (e as Error).message)
          continue
        }
        throw new SnapferryError(
          'OPENSTACK_UNREACHABLE',
          `cloud '${this.cloud.name}'${region ? ` region '${region}'` : ''}: ${service} at ${new URL(url).origin} did not answer ${method} ${new URL(url).pathname} (${code || (e as Error).message}) after ${attempt} attempt(s)`,
          {
            cause: e,
            transient: true,
            hint: 'check that the endpoint is reachable from this host (`interface:` in clouds.yaml picks public/internal endpoints)',
            details: { cloud: this.cloud.name, region, service, url },
          },
        )
      }
    }
  }

  #report(c: ApiCall): void {
    this.#o.log?.debug(
      {
        cloud: c.cloud,
        region: c.region,
        service: c.service,
        method: c.method,
        url: c.url,
        status: c.status,
        ms: Math.round(c.durationMs),
        requestId: c.requestId,
      },
      'openstack api call',
    )
    for (const l of this.#listeners) l(c)
  }

  async #backoff(
    attempt: number,
    retryAfter: string | undefined,
    signal: AbortSignal | undefined,
    why: string,
    call?: ApiCall,
  ) {
    const base = (this.#o.backoffMs ?? 500) * 2 ** (attempt - 1)
    const ra = retryAfter && /^\d+$/.test(retryAfter) ? Number(retryAfter) * 1000 : 0
    const ms = Math.min(Math.max(base, ra), 30_000)
    this.#o.log?.warn(
      { cloud: this.cloud.name, url: call?.url, attempt, ms, why },
      'openstack call failed, retrying',
    )
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(resolve, ms)
      signal?.addEventListener(
        'abort',
        () => {
          clearTimeout(t)
          reject(new SnapferryError('ABORTED', 'interrupted while waiting to retry an OpenStack call'))
        },
        { once: true },
      )
    })
  }
}
