import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { SnapferryError } from '../../../src/errors/snapferry-error.js'
import { loadCloud, mergeDeep, pickRegion } from '../../../src/openstack/clouds-config.js'

let dir: string
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'sf-clouds-'))
})
afterEach(async () => {
  await rm(dir, { recursive: true, force: true })
})

const env = (extra: Record<string, string> = {}) => ({ HOME: path.join(dir, 'home'), ...extra })

function codeOf(fn: () => unknown): string {
  try {
    fn()
  } catch (e) {
    return e instanceof SnapferryError ? `${e.code}: ${e.message}` : String(e)
  }
  return 'no error'
}

describe('clouds.yaml', () => {
  it('finds clouds.yaml and secure.yaml in ~/.config/openstack and merges the password in', async () => {
    const d = path.join(dir, 'home', '.config', 'openstack')
    await mkdir(d, { recursive: true })
    await writeFile(
      path.join(d, 'clouds.yaml'),
      'clouds:\n  prod:\n    auth:\n      auth_url: https://ks.example:5000\n      username: ops\n      project_name: move\n      user_domain_name: Default\n      project_domain_name: Default\n    region_name: RegionOne\n    interface: internal\n',
    )
    await writeFile(path.join(d, 'secure.yaml'), 'clouds:\n  prod:\n    auth:\n      password: s3cret\n')
    const c = loadCloud({ cloud: 'prod', env: env(), cwd: dir })
    expect(c.auth).toMatchObject({
      type: 'password',
      username: 'ops',
      password: 's3cret',
      projectName: 'move',
    })
    expect(c.regions).toEqual(['RegionOne'])
    expect(c.interface).toBe('internal')
    expect(c.source).toBe(`${path.join(d, 'clouds.yaml')} + ${path.join(d, 'secure.yaml')}`)
  })

  it('takes OS_CLOUD, OS_CLIENT_CONFIG_FILE, a regions list with names and mappings, and application credentials', async () => {
    const f = path.join(dir, 'c.yaml')
    await writeFile(
      f,
      'clouds:\n  lab:\n    auth_type: v3applicationcredential\n    auth:\n      auth_url: http://k/v3\n      application_credential_id: abc\n      application_credential_secret: xyz\n    regions:\n      - RegionOne\n      - name: RegionTwo\n        values: { interface: public }\n',
    )
    const c = loadCloud({ env: env({ OS_CLOUD: 'lab', OS_CLIENT_CONFIG_FILE: f }), cwd: dir })
    expect(c.name).toBe('lab')
    expect(c.auth).toEqual({
      type: 'application-credential',
      id: 'abc',
      name: undefined,
      secret: 'xyz',
      username: undefined,
      userId: undefined,
      userDomainName: undefined,
      userDomainId: undefined,
    })
    expect(c.regions).toEqual(['RegionOne', 'RegionTwo'])
    expect(pickRegion(c, 'RegionTwo')).toBe('RegionTwo')
    expect(codeOf(() => pickRegion(c, 'RegionThree'))).toBe(
      "OPENSTACK_REGION_UNKNOWN: region 'RegionThree' is not a region of cloud 'lab' (RegionOne, RegionTwo)",
    )
  })

  it('reads an openrc environment as cloud envvars', () => {
    const c = loadCloud({
      env: env({
        OS_AUTH_URL: 'http://k:5000/v3',
        OS_USERNAME: 'u',
        OS_PASSWORD: 'p',
        OS_PROJECT_NAME: 'pr',
        OS_USER_DOMAIN_NAME: 'Default',
        OS_REGION_NAME: 'RegionOne',
      }),
      cwd: dir,
    })
    expect(c.name).toBe('envvars')
    expect(c.auth).toMatchObject({ type: 'password', username: 'u', projectName: 'pr' })
    expect(c.regions).toEqual(['RegionOne'])
  })

  it('says where it looked, which clouds exist and what is missing', async () => {
    expect(codeOf(() => loadCloud({ cloud: 'prod', env: env(), cwd: dir }))).toBe(
      "OPENSTACK_CONFIG: cloud 'prod': no clouds.yaml found",
    )
    const f = path.join(dir, 'clouds.yaml')
    await writeFile(f, 'clouds:\n  a:\n    auth: { auth_url: http://k, username: u }\n  b: {}\n')
    expect(codeOf(() => loadCloud({ cloud: 'prod', env: env(), cwd: dir }))).toBe(
      `OPENSTACK_CONFIG: cloud 'prod' is not in ${f}`,
    )
    expect(codeOf(() => loadCloud({ cloud: 'a', env: env(), cwd: dir }))).toBe(
      `OPENSTACK_CONFIG: cloud 'a' (${f}): auth.password is missing`,
    )
    expect(codeOf(() => loadCloud({ env: env(), cwd: dir }))).toBe(
      'OPENSTACK_CONFIG: no OpenStack cloud named',
    )
    await writeFile(f, 'clouds:\n  a:\n    auth_type: token\n    auth: { auth_url: http://k }\n')
    expect(codeOf(() => loadCloud({ cloud: 'a', env: env(), cwd: dir }))).toBe(
      `OPENSTACK_CONFIG: cloud 'a' (${f}): auth_type 'token' is not supported`,
    )
  })

  it('merges secure.yaml over clouds.yaml key by key', () => {
    expect(mergeDeep({ a: { b: 1, c: 2 }, d: [1] }, { a: { c: 3 }, d: [2] })).toEqual({
      a: { b: 1, c: 3 },
      d: [2],
    })
  })
})
