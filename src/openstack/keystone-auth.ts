/** Keystone v3 authentication, pure: the request body for each auth type, and the token it returns. */
import { SnapferryError } from '../errors/snapferry-error.js'
import type { CloudAuth } from './clouds-config.js'
import type { CatalogService } from './service-catalog.js'

export interface Token {
  readonly value: string
  readonly expiresAt: number
  readonly catalog: readonly CatalogService[]
  readonly projectId: string | undefined
  readonly userId: string | undefined
}

/** How the credentials are named in messages: never the secret. */
export function whoAuthenticates(a: CloudAuth): string {
  return a.type === 'password'
    ? `user '${a.username ?? a.userId}'`
    : `application credential '${a.id ?? a.name}'`
}

/** The `POST /v3/auth/tokens` body: password (project-scoped) or application credential. */
export function authBody(a: CloudAuth): unknown {
  const domain = (name?: string, id?: string) => (id ? { id } : name ? { name } : undefined)
  if (a.type === 'application-credential') {
    const user = a.id
      ? undefined
      : {
          ...(a.userId ? { id: a.userId } : { name: a.username }),
          ...(domain(a.userDomainName, a.userDomainId)
            ? { domain: domain(a.userDomainName, a.userDomainId) }
            : {}),
        }
    return {
      auth: {
        identity: {
          methods: ['application_credential'],
          application_credential: {
            ...(a.id ? { id: a.id } : { name: a.name, user }),
            secret: a.secret,
          },
        },
      },
    }
  }
  const user = {
    ...(a.userId ? { id: a.userId } : { name: a.username }),
    password: a.password,
    ...(a.userId ? {} : { domain: domain(a.userDomainName, a.userDomainId) ?? { id: 'default' } }),
  }
  const project = a.projectId
    ? { id: a.projectId }
    : a.projectName
      ? { name: a.projectName, domain: domain(a.projectDomainName, a.projectDomainId) ?? { id: 'default' } }
      : undefined
  return {
    auth: {
      identity: { methods: ['password'], password: { user } },
      ...(project ? { scope: { project } } : {}),
    },
  }
}

/** The token from Keystone's answer: X-Subject-Token, expiry, catalog, project. */
export function tokenFrom(cloud: string, authUrl: string, value: string | undefined, body: unknown): Token {
  const tok = (body as { token?: Record<string, unknown> }).token
  if (!value || !tok) {
    throw new SnapferryError('OPENSTACK_API_ERROR', `cloud '${cloud}': Keystone answered without a token`, {
      hint: `is ${authUrl} really Keystone v3?`,
      details: { cloud, authUrl },
    })
  }
  const expires = Date.parse(String(tok.expires_at ?? ''))
  return {
    value,
    expiresAt: Number.isFinite(expires) ? expires : Date.now() + 3_600_000,
    catalog: (tok.catalog as CatalogService[] | undefined) ?? [],
    projectId: (tok.project as { id?: string } | undefined)?.id,
    userId: (tok.user as { id?: string } | undefined)?.id,
  }
}
