/**
 * OpenStack credentials the way OpenStack users keep them: clouds.yaml (merged with secure.yaml) from
 * the search path openstacksdk and `openstack` use, `OS_CLOUD`, or the `OS_*` variables of an openrc
 * file (cloud `envvars`). Pure apart from reading the files: the result names the file it came from so
 * every later error can point at it. docs/OPENSTACK.md.
 */
import { existsSync, readFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parse as parseYaml } from 'yaml'
import { SnapferryError } from '../errors/snapferry-error.js'

export type CloudAuth =
  | {
      readonly type: 'password'
      readonly username?: string | undefined
      readonly userId?: string | undefined
      readonly password: string
      readonly userDomainName?: string | undefined
      readonly userDomainId?: string | undefined
      readonly projectName?: string | undefined
      readonly projectId?: string | undefined
      readonly projectDomainName?: string | undefined
      readonly projectDomainId?: string | undefined
    }
  | {
      readonly type: 'application-credential'
      readonly id?: string | undefined
      readonly name?: string | undefined
      readonly secret: string
      /** With a credential name, the user owning it. */
      readonly username?: string | undefined
      readonly userId?: string | undefined
      readonly userDomainName?: string | undefined
      readonly userDomainId?: string | undefined
    }

export type EndpointInterface = 'public' | 'internal' | 'admin'

export interface CloudConfig {
  /** The cloud's name in clouds.yaml (`envvars` for OS_* variables). */
  readonly name: string
  /** Where it was read from (file paths, or `environment`). */
  readonly source: string
  readonly authUrl: string
  readonly auth: CloudAuth
  /** Regions the cloud lists (`region_name` and/or `regions:`); empty means any the catalog has. */
  readonly regions: readonly string[]
  readonly interface: EndpointInterface
  /** TLS: false disables verification (clouds.yaml `verify: false`); a CA bundle path with `cacert`. */
  readonly verify: boolean
  readonly cacert?: string | undefined
  /** `block_storage_api_version` / `volume_api_version` and `compute_api_version`, when pinned. */
  readonly volumeApiVersion?: string | undefined
  readonly computeApiVersion?: string | undefined
}

const FILE_NAMES = ['clouds.yaml', 'clouds.yml', 'clouds.json']
const SECURE_NAMES = ['secure.yaml', 'secure.yml', 'secure.json']

/** The directories openstacksdk searches, in order: the current directory, the user's, the system's. */
export function searchDirs(env: NodeJS.ProcessEnv, cwd = process.cwd()): string[] {
  const home = env.HOME ?? os.homedir()
  const xdg = env.XDG_CONFIG_HOME ?? path.join(home, '.config')
  return [cwd, path.join(xdg, 'openstack'), '/etc/openstack']
}

function firstExisting(explicit: string | undefined, names: string[], dirs: string[]): string | undefined {
  if (explicit) return explicit
  for (const d of dirs) for (const n of names) if (existsSync(path.join(d, n))) return path.join(d, n)
  return undefined
}

function readYamlFile(file: string): Record<string, unknown> {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (e) {
    throw new SnapferryError('OPENSTACK_CONFIG', `cannot read ${file}: ${(e as Error).message}`, {
      cause: e,
      hint: 'check the path and its permissions (OS_CLIENT_CONFIG_FILE / OS_CLIENT_SECURE_FILE)',
      details: { file },
    })
  }
  try {
    const v = parseYaml(text) as unknown
    return v && typeof v === 'object' ? (v as Record<string, unknown>) : {}
  } catch (e) {
    throw new SnapferryError('OPENSTACK_CONFIG', `${file} is not valid YAML: ${(e as Error).message}`, {
      cause: e,
      hint: 'fix the file; `openstack --os-cloud NAME token issue` reads the same file',
      details: { file },
    })
  }
}

/** Deep merge: secure.yaml's values win over clouds.yaml's, objects merged key by key. */
export function mergeDeep(a: unknown, b: unknown): unknown {
  if (a && b && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a) && !Array.isArray(b)) {
    const out: Record<string, unknown> = { ...(a as Record<string, unknown>) }
    for (const [k, v] of Object.entries(b as Record<string, unknown>)) out[k] = mergeDeep(out[k], v)
    return out
  }
  return b === undefined ? a : b
}

export interface LoadCloudOptions {
  /** The cloud to use; default `OS_CLOUD`. */
  readonly cloud?: string | undefined
  readonly env?: NodeJS.ProcessEnv
  readonly cwd?: string
}

/** Find and read the cloud: clouds.yaml + secure.yaml, or the OS_* variables. */
export function loadCloud(o: LoadCloudOptions = {}): CloudConfig {
  const env = o.env ?? process.env
  const wanted = o.cloud ?? env.OS_CLOUD
  const dirs = searchDirs(env, o.cwd)
  const file = firstExisting(env.OS_CLIENT_CONFIG_FILE, FILE_NAMES, dirs)
  if (wanted === 'envvars' || (!wanted && env.OS_AUTH_URL)) return cloudFromEnv(env)
  if (!wanted) {
    throw new SnapferryError('OPENSTACK_CONFIG', 'no OpenStack cloud named', {
      hint: 'set `openstack.cloud` in the pipeline, or OS_CLOUD, to an entry of clouds.yaml (or source an openrc file)',
    })
  }
  if (!file) {
    throw new SnapferryError('OPENSTACK_CONFIG', `cloud '${wanted}': no clouds.yaml found`, {
      hint: `looked in ${dirs.map((d) => path.join(d, 'clouds.yaml')).join(', ')}; set OS_CLIENT_CONFIG_FILE to its path`,
      details: { cloud: wanted },
    })
  }
  // An explicit secure file that does not exist is no error (openstacksdk ignores it too).
  const secureCandidate = firstExisting(env.OS_CLIENT_SECURE_FILE, SECURE_NAMES, dirs)
  const secureFile = secureCandidate && existsSync(secureCandidate) ? secureCandidate : undefined
  const main = readYamlFile(file)
  const secure = secureFile ? readYamlFile(secureFile) : {}
  const clouds = mergeDeep(main.clouds ?? {}, secure.clouds ?? {}) as Record<string, unknown>
  const entry = clouds[wanted]
  const source = secureFile ? `${file} + ${secureFile}` : file
  if (!entry || typeof entry !== 'object') {
    const names = Object.keys(clouds)
    throw new SnapferryError('OPENSTACK_CONFIG', `cloud '${wanted}' is not in ${file}`, {
      hint: names.length ? `clouds there: ${names.join(', ')}` : 'the file lists no clouds under `clouds:`',
      details: { cloud: wanted, file },
    })
  }
  return cloudFromEntry(wanted, source, entry as Record<string, unknown>)
}

const str = (v: unknown): string | undefined =>
  typeof v === 'string' && v !== '' ? v : typeof v === 'number' ? String(v) : undefined

function cloudFromEntry(name: string, source: string, e: Record<string, unknown>): CloudConfig {
  const auth = (e.auth ?? {}) as Record<string, unknown>
  const authType = str(e.auth_type) ?? 'password'
  const bad = (what: string, hint: string) =>
    new SnapferryError('OPENSTACK_CONFIG', `cloud '${name}' (${source}): ${what}`, {
      hint,
      details: { cloud: name, file: source },
    })
  const authUrl = str(auth.auth_url)
  if (!authUrl)
    throw bad('auth.auth_url is missing', 'add the Keystone URL, e.g. https://keystone.example:5000/v3')
  const version = str(e.identity_api_version)
  if (version && !version.startsWith('3'))
    throw bad(`identity_api_version ${version} is not supported`, 'snapferry speaks Keystone v3 only')
  let cloudAuth: CloudAuth
  if (authType === 'password' || authType === 'v3password') {
    const password = str(auth.password)
    if (!password) throw bad('auth.password is missing', 'put it in secure.yaml next to clouds.yaml')
    if (!str(auth.username) && !str(auth.user_id))
      throw bad('auth.username (or user_id) is missing', 'name the Keystone user')
    cloudAuth = {
      type: 'password',
      username: str(auth.username),
      userId: str(auth.user_id),
      password,
      userDomainName: str(auth.user_domain_name) ?? (auth.user_domain_id ? undefined : str(auth.domain_name)),
      userDomainId: str(auth.user_domain_id) ?? str(auth.domain_id),
      projectName: str(auth.project_name) ?? str(auth.tenant_name),
      projectId: str(auth.project_id) ?? str(auth.tenant_id),
      projectDomainName: str(auth.project_domain_name),
      projectDomainId: str(auth.project_domain_id),
    }
  } else if (authType === 'v3applicationcredential' || authType === 'application_credential') {
    const secret = str(auth.application_credential_secret)
    if (!secret)
      throw bad('auth.application_credential_secret is missing', 'put it in secure.yaml next to clouds.yaml')
    if (!str(auth.application_credential_id) && !str(auth.application_credential_name))
      throw bad(
        'auth.application_credential_id (or _name with username) is missing',
        'copy it from `openstack application credential create`',
      )
    cloudAuth = {
      type: 'application-credential',
      id: str(auth.application_credential_id),
      name: str(auth.application_credential_name),
      secret,
      username: str(auth.username),
      userId: str(auth.user_id),
      userDomainName: str(auth.user_domain_name),
      userDomainId: str(auth.user_domain_id),
    }
  } else {
    throw bad(
      `auth_type '${authType}' is not supported`,
      'use `password` (v3password) or `v3applicationcredential`',
    )
  }
  const regions: string[] = []
  const regionName = str(e.region_name)
  if (regionName) regions.push(regionName)
  if (Array.isArray(e.regions)) {
    for (const r of e.regions) {
      const n = typeof r === 'string' ? r : str((r as Record<string, unknown>)?.name)
      if (n && !regions.includes(n)) regions.push(n)
    }
  }
  const iface = (str(e.interface) ?? 'public').replace(/URL$/, '') as EndpointInterface
  if (!['public', 'internal', 'admin'].includes(iface))
    throw bad(`interface '${iface}' is not one of public, internal, admin`, 'fix `interface:`')
  return {
    name,
    source,
    authUrl,
    auth: cloudAuth,
    regions,
    interface: iface,
    verify: e.verify !== false && e.insecure !== true,
    cacert: str(e.cacert),
    volumeApiVersion: str(e.block_storage_api_version) ?? str(e.volume_api_version),
    computeApiVersion: str(e.compute_api_version),
  }
}

/** An openrc file's OS_* variables, as openstacksdk reads them (cloud `envvars`). */
export function cloudFromEnv(env: NodeJS.ProcessEnv): CloudConfig {
  const auth: Record<string, unknown> = {
    auth_url: env.OS_AUTH_URL,
    username: env.OS_USERNAME,
    user_id: env.OS_USER_ID,
    password: env.OS_PASSWORD,
    user_domain_name: env.OS_USER_DOMAIN_NAME,
    user_domain_id: env.OS_USER_DOMAIN_ID,
    project_name: env.OS_PROJECT_NAME ?? env.OS_TENANT_NAME,
    project_id: env.OS_PROJECT_ID ?? env.OS_TENANT_ID,
    project_domain_name: env.OS_PROJECT_DOMAIN_NAME,
    project_domain_id: env.OS_PROJECT_DOMAIN_ID,
    application_credential_id: env.OS_APPLICATION_CREDENTIAL_ID,
    application_credential_name: env.OS_APPLICATION_CREDENTIAL_NAME,
    application_credential_secret: env.OS_APPLICATION_CREDENTIAL_SECRET,
  }
  return cloudFromEntry('envvars', 'environment (OS_* variables)', {
    auth,
    auth_type: env.OS_AUTH_TYPE,
    region_name: env.OS_REGION_NAME,
    interface: env.OS_INTERFACE,
    identity_api_version: env.OS_IDENTITY_API_VERSION,
    volume_api_version: env.OS_VOLUME_API_VERSION,
    compute_api_version: env.OS_COMPUTE_API_VERSION,
    cacert: env.OS_CACERT,
    insecure: env.OS_INSECURE === 'true' || env.OS_INSECURE === '1',
  })
}

/** The region to use: the one asked for, checked against the cloud's list when it has one. */
export function pickRegion(cloud: CloudConfig, wanted: string | undefined): string | undefined {
  if (wanted === undefined) return cloud.regions[0]
  if (cloud.regions.length > 0 && !cloud.regions.includes(wanted)) {
    throw new SnapferryError(
      'OPENSTACK_REGION_UNKNOWN',
      `region '${wanted}' is not a region of cloud '${cloud.name}' (${cloud.regions.join(', ')})`,
      {
        hint: `add it to \`regions:\` of cloud '${cloud.name}' in ${cloud.source}, or fix the region name in the pipeline`,
        details: { cloud: cloud.name, region: wanted, regions: cloud.regions },
      },
    )
  }
  return wanted
}
