/**
 * One HTTP exchange with an OpenStack API through undici: JSON in and out, microversion headers, transient
 * failures retried with backoff (a request that may have reached the service only when repeating it is
 * harmless), and every call reported to the listeners with its body redacted. Tokens are the caller's
 * (openstack-session.ts); this module never logs one.
 */
import { readFileSync } from 'node:fs'
import { Agent, type Dispatcher, request } from 'undici'
import { SnapferryError } from '../errors/snapferry-error.js'
import type { Logger } from '../logging/logger.js'
import { apiError, header } from './api-errors.js'
import type { CloudConfig } from './clouds-config.js'
import { redact } from './redact.js'
import type { ServiceKind } from './service-catalog.js'

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

const IDEMPOTENT = new Set(['GET', 'HEAD', 'PUT', 'DELETE'])

export class ApiExchange {
  readonly cloud: CloudConfig
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

  /** Report every call to `l` until the returned function is called. */
  listen(l: (c: ApiCall) => void): () => void {
    this.#listeners.add(l)
    return () => this.#listeners.delete(l)
  }

  async close(): Promise<void> {
    await this.#dispatcher.close()
  }

  /** One call (with its retries); `token` goes into X-Auth-Token. */
  async send<T>(
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
      /** What every report of this attempt says: which call, its status, how long it took. */
      const where = (status: number | null) => ({
        cloud: this.cloud.name,
        region,
        service,
        method,
        url,
        status,
        durationMs: performance.now() - t0,
      })
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
          ...where(status),
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
        this.#report({ ...where(status), response: { error: String((e as Error).message) } })
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
