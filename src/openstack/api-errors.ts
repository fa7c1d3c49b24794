/** OpenStack error answers as SnapferryErrors naming the cloud, region, object and call. */
import { SnapferryError } from '../errors/snapferry-error.js'
import type { ServiceKind } from './service-catalog.js'

export interface ErrorResponse {
  readonly status: number
  readonly body: unknown
  readonly headers: Record<string, string | string[] | undefined>
}

export function apiError(
  cloud: string,
  service: ServiceKind,
  region: string | undefined,
  method: string,
  url: string,
  res: ErrorResponse,
  about: string | undefined,
): SnapferryError {
  const msg = apiMessage(res.body) ?? (typeof res.body === 'string' ? res.body.slice(0, 300) : 'no message')
  const where = `cloud '${cloud}'${region ? ` region '${region}'` : ''}`
  const what = about ? `${about}: ` : ''
  const notFound = res.status === 404
  return new SnapferryError(
    notFound ? 'OPENSTACK_NOT_FOUND' : 'OPENSTACK_API_ERROR',
    `${where}: ${what}${service} ${method} ${safePath(url)} failed with HTTP ${res.status}: ${msg}`,
    {
      transient: res.status >= 500,
      hint: notFound
        ? `check the name or id, and that it lives in ${region ?? 'this region'} of cloud '${cloud}'`
        : res.status === 403
          ? 'this user lacks the role the call needs (admin is needed for some Cinder/Nova actions)'
          : res.status === 409
            ? 'the object is busy or in the wrong state; wait or fix its state, then run again'
            : res.status >= 500
              ? 'the service failed: look at its logs with the request id'
              : 'see the message; the request is recorded in the runbook result and the log',
      details: {
        cloud: cloud,
        region,
        service,
        method,
        url: safePath(url),
        status: res.status,
        requestId:
          header(res.headers, 'x-openstack-request-id') ?? header(res.headers, 'x-compute-request-id'),
      },
    },
  )
}

export function safePath(url: string): string {
  try {
    const u = new URL(url)
    return `${u.origin}${u.pathname}`
  } catch {
    return url
  }
}

export function header(h: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = h[name]
  return Array.isArray(v) ? v[0] : v
}

/** The human message of an OpenStack error body: `{"itemNotFound": {"message": …}}`, `{"error": {…}}`, … */
export function apiMessage(body: unknown): string | undefined {
  if (!body || typeof body !== 'object') return undefined
  const b = body as Record<string, unknown>
  if (typeof b.message === 'string') return b.message
  for (const v of Object.values(b)) {
    if (v && typeof v === 'object' && typeof (v as { message?: unknown }).message === 'string')
      return (v as { message: string }).message
  }
  return undefined
}
