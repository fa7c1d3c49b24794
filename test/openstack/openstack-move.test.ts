/**
 * A VM moved from RegionOne to RegionTwo against real OpenStack services (Keystone, Cinder with the RBD
 * driver on two real Ceph clusters, Nova with the fake virt driver): the whole move through the CLI,
 * a rollback after a failure past the source stop, and the errors operators meet first.
 */
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, beforeEach, describe, expect, it, onTestFailed } from 'vitest'
import { SnapferryError } from '../../src/errors/snapferry-error.js'
import { CinderApi, type CinderVolume } from '../../src/openstack/cinder-api.js'
import { loadCloud } from '../../src/openstack/clouds-config.js'
import { NovaApi } from '../../src/openstack/nova-api.js'
import { OpenStackSession } from '../../src/openstack/openstack-session.js'
import { readJournal } from '../../src/state/journal.js'
import { snapferry } from '../helpers/cli.js'
import { type Lab, OPENSTACK_SKIP_REASON, startLab } from '../helpers/openstack-lab.js'
import { mulberry32, randomBytes } from '../helpers/random.js'

const run = promisify(execFile)
const MiB = 1 << 20
/** Unique names per run, so a lab reused while developing (SNAPFERRY_OPENSTACK_LAB) holds no look-alikes. */
const TAG = Date.now().toString(36)
const VM1 = `vm1-${TAG}`
const VM2 = `vm2-${TAG}`

describe.skipIf(OPENSTACK_SKIP_REASON !== undefined)(
  'OpenStack region-to-region move (real Keystone, Cinder RBD, Nova)',
  () => {
    let lab: Lab
    let session: OpenStackSession
    let r1: { cinder: CinderApi; nova: NovaApi }
    let r2: { cinder: CinderApi; nova: NovaApi }
    let work: string

    beforeAll(async () => {
      lab = await startLab()
      session = new OpenStackSession(loadCloud({ cloud: 'lab', env: { ...process.env, ...lab.env } }))
      r1 = { cinder: new CinderApi(session, 'RegionOne'), nova: new NovaApi(session, 'RegionOne') }
      r2 = { cinder: new CinderApi(session, 'RegionTwo'), nova: new NovaApi(session, 'RegionTwo') }
      work = await mkdtemp(path.join(tmpdir(), 'snapferry-os-'))
    }, 900_000)

    beforeEach(() => {
      // A failure against real services is explained by their logs: show their errors with it.
      onTestFailed(() => {
        process.stderr.write(`OpenStack lab errors (${lab.dir}/log):\n${lab.errors()}\n`)
      })
    })

    afterAll(async () => {
      await session?.close()
      await lab?.stop()
      if (work) await rm(work, { recursive: true, force: true })
    }, 120_000)

    const rbd = (region: 'RegionOne' | 'RegionTwo', ...args: string[]) =>
      run('rbd', ['--conf', lab.cephConf[region], ...args], { maxBuffer: 64 << 20 })

    /** sha256 of every byte of a Cinder volume's RBD image, read with the real rbd CLI. */
    async function imageSha(region: 'RegionOne' | 'RegionTwo', volumeId: string): Promise<string> {
      const file = path.join(work, `${volumeId}.raw`)
      await rbd(region, 'export', `volumes/volume-${volumeId}`, file)
      const sha = createHash('sha256')
        .update(await readFile(file))
        .digest('hex')
      await rm(file)
      return sha
    }

    /**
     * A 1 GiB volume for a test's source VM. The lab's Cinder keeps its database in sqlite (standing in for
     * MariaDB, scripts/openstack-lab), which sometimes answers a write with "database is locked" at once,
     * whatever its busy timeout, when another Cinder service wrote first (a clean-clone .ci/run on c291367:
     * HTTP 500 here, 827 ms into the suite). Such a create is undone (a half-made volume of the name
     * would make the name ambiguous) and tried again; the test's own steps are never retried.
     */
    async function labVolume(name: string): Promise<CinderVolume> {
      for (let attempt = 1; ; attempt++) {
        try {
          return await r1.cinder.create({ name, size: 1 })
        } catch (e) {
          if (attempt >= 3 || !(e instanceof SnapferryError) || !/HTTP 5\d\d/.test(e.message)) throw e
          process.stderr.write(`lab: creating volume ${name} failed (${e.message}); trying again\n`)
          const left = await r1.cinder.find(name).catch(() => undefined)
          if (left) {
            await r1.cinder.delete(left.id)
            await r1.cinder.waitGone(left.id, 120_000)
          }
        }
      }
    }

    /** A server in RegionOne booted from a 1 GiB volume with a second volume attached, both holding data. */
    async function sourceVm(name: string, seed: number) {
      const boot = await labVolume(`${name}-boot`)
      const data = await labVolume(`${name}-data`)
      for (const v of [boot, data]) await r1.cinder.waitFor(v.id, ['available'], 120_000)
      await r1.cinder.setBootable(boot.id, true)
      const rnd = mulberry32(seed)
      for (const [i, v] of [boot, data].entries()) {
        // Data at the start, the middle and near the end: a VM's disk, sparse in between.
        for (const off of [0, 300 * MiB + 4096 * i, 1000 * MiB]) {
          const f = path.join(work, 'chunk')
          await writeFile(f, randomBytes(rnd, 3 * MiB))
          await rbd(
            'RegionOne',
            'import-diff',
            '--no-progress',
            await diffOf(f, off),
            `volumes/volume-${v.id}`,
          )
        }
      }
      const flavor = await r1.nova.flavorId('m1.tiny')
      const id = await r1.nova.create({
        name,
        flavorRef: flavor,
        devices: [
          { volumeId: boot.id, bootIndex: 0 },
          { volumeId: data.id, bootIndex: -1 },
        ],
      })
      await r1.nova.waitFor(id, ['ACTIVE'], 180_000)
      return { id, boot, data }
    }

    /** An rbd diff v1 stream writing a file's bytes at `offset` (no from-snapshot, no size change). */
    async function diffOf(file: string, offset: number): Promise<string> {
      const { encodeDiffV1 } = await import('../../src/delta-format/diff-encoder.js')
      const data = await readFile(file)
      const chunks: Buffer[] = []
      for await (const b of encodeDiffV1({ size: 1 << 30 }, [{ kind: 'write', offset, data }])) chunks.push(b)
      const out = `${file}.diff`
      await writeFile(out, Buffer.concat(chunks))
      return out
    }

    function pipelineYaml(name: string, vm: string, after: string, extra = ''): string {
      return `apiVersion: snapferry/v1
kind: Pipeline
name: ${name}
openstack:
  cloud: lab
  regions:
    RegionOne:
      rbd: { conf: ${lab.cephConf.RegionOne} }
    RegionTwo:
      rbd: { conf: ${lab.cephConf.RegionTwo} }
volumes:
  - name: boot
    source: { driver: cinder, region: RegionOne, volume: ${vm}-boot }
    destination: { driver: cinder, region: RegionTwo }
  - name: data
    source: { driver: cinder, region: RegionOne, volume: ${vm}-data }
    destination: { driver: cinder, region: RegionTwo }
convergence:
  targetDowntime: 60s
  minRounds: 1
  whenConverged: cutover
cutover:
  verify: full
  before:
    - name: stop-vm
      openstack: { action: stop-server, region: RegionOne, server: ${vm} }
${extra}  after:
${after}
`
    }

    it('moves a server with two volumes: byte-identical volumes attached to a running server in RegionTwo, source stopped only for the window', async () => {
      const vm = await sourceVm(VM1, 1)
      const file = path.join(work, 'move.yaml')
      await writeFile(
        file,
        pipelineYaml(
          `move-${VM1}`,
          VM1,
          `    - name: boot-vm
      openstack:
        action: create-server
        region: RegionTwo
        server: ${VM1}
        flavor: m1.tiny
        bootVolume: boot
        volumes: [data]
        metadata: { moved-from: RegionOne }`,
        ),
      )
      const plan = await snapferry(['plan', file], lab.env)
      expect(plan.stderr).toBe('')
      expect(plan.code).toBe(0)
      expect(plan.stdout).toContain(
        `openstack: boot: source Cinder volume ${VM1}-boot (${vm.boot.id}) in RegionOne`,
      )
      expect(plan.stdout).toContain(`→ rbd volumes/volume-${vm.boot.id}`)
      expect(plan.stdout).toContain('openstack: boot: destination new Cinder volume in RegionTwo')

      const r = await snapferry(['run', file], lab.env, 600_000)
      expect(r.stderr).toBe('')
      expect(r.code).toBe(0)
      const downtime = /cutover done: downtime ([\d.]+) (ms|s)/.exec(r.stdout)
      expect(downtime).not.toBeNull()

      // RegionTwo: two new volumes, marked moved, attached to a running vm1 that boots from `boot`.
      const moved = await r2.cinder.findByMetadata('snapferry-pipeline', `move-${VM1}`)
      expect(moved.map((v) => v.metadata['snapferry-volume']).sort()).toEqual(['boot', 'data'])
      const server = await r2.nova.find(VM1)
      expect(server.status).toBe('ACTIVE')
      expect(server.metadata['moved-from']).toBe('RegionOne')
      const attached = new Set(await r2.nova.attachedVolumes(server.id))
      for (const v of moved) {
        expect(v.status).toBe('in-use')
        expect(v.metadata['snapferry-state']).toBe('moved')
        expect(attached.has(v.id)).toBe(true)
        expect(v.size).toBe(1)
      }
      // Byte-identical: the whole 1 GiB of each source image against its copy in the other cluster.
      const byName = Object.fromEntries(moved.map((v) => [v.metadata['snapferry-volume'], v.id]))
      expect(await imageSha('RegionTwo', byName.boot as string)).toBe(await imageSha('RegionOne', vm.boot.id))
      expect(await imageSha('RegionTwo', byName.data as string)).toBe(await imageSha('RegionOne', vm.data.id))
      expect((await r2.cinder.get(byName.boot as string)).bootable).toBe('true')
      // No snapshot left on either side: Cinder refuses to delete a volume whose image has some.
      expect(r.stdout).toContain("openstack: removed snapferry's")
      for (const [region, id] of [
        ['RegionOne', vm.boot.id],
        ['RegionOne', vm.data.id],
        ['RegionTwo', byName.boot],
        ['RegionTwo', byName.data],
      ] as const) {
        const { stdout } = await rbd(region, 'snap', 'ls', '--format', 'json', `volumes/volume-${id}`)
        expect(JSON.parse(stdout)).toEqual([])
      }

      // The source stays stopped (it moved) and was stopped only inside the cutover window: its stop
      // came after the last delta round began, and the reported downtime covers stop → server ACTIVE.
      expect((await r1.nova.get(vm.id)).status).toBe('SHUTOFF')
      const journal = await readJournal(path.join(work, '.snapferry', `move-${VM1}`))
      const cutoverAt = Date.parse(
        journal.find((e) => e.type === 'phase' && e.phase === 'cutover')?.at as string,
      )
      const stopStep = journal.find(
        (e) => e.type === 'cutover-step' && e.step === 'before:stop-vm' && e.status === 'started',
      )
      expect(Date.parse(stopStep?.at as string)).toBeGreaterThanOrEqual(cutoverAt)
      // base + at least one delta round for each of the two volumes before the stop
      const rounds = journal.filter((e) => e.type === 'round-completed' && Date.parse(e.at) < cutoverAt)
      expect(rounds.length).toBeGreaterThanOrEqual(4)
      const finished = journal.find((e) => e.type === 'cutover-finished')
      expect(finished?.type === 'cutover-finished' && finished.result.status).toBe('ok')
      // Every typed step recorded its requests, and no secret went into the journal.
      const stepOk = journal.find(
        (e) => e.type === 'cutover-step' && e.step === 'after:boot-vm' && e.status === 'ok',
      )
      expect(stepOk?.type === 'cutover-step' && stepOk.requests?.some((q) => q.method === 'POST')).toBe(true)
      const raw = await readFile(path.join(work, '.snapferry', `move-${VM1}`, 'journal.jsonl'), 'utf8')
      expect(raw).not.toContain(lab.adminPassword)
    }, 900_000)

    it('a failure after the source stop rolls back: the source runs again with its volumes attached; RegionTwo is marked', async () => {
      const vm = await sourceVm(VM2, 2)
      const file = path.join(work, 'rollback.yaml')
      await writeFile(
        file,
        pipelineYaml(
          `move-${VM2}`,
          VM2,
          `    - name: boot-vm
      openstack: { action: create-server, region: RegionTwo, server: ${VM2}, flavor: no-such-flavor, bootVolume: boot, volumes: [data] }`,
          `    - name: detach
      openstack: { action: detach-volumes, region: RegionOne, server: ${VM2} }
`,
        ),
      )
      const r = await snapferry(['run', file], lab.env, 600_000)
      expect(r.code).toBe(4)
      expect(r.stdout).toContain("flavor 'no-such-flavor' not found in region 'RegionTwo' of cloud 'lab'")
      expect(r.stdout).toMatch(/ok +undo:detach/)
      expect(r.stdout).toMatch(/ok +undo:stop-vm/)
      const src = await r1.nova.get(vm.id)
      expect(src.status).toBe('ACTIVE')
      expect(new Set(await r1.nova.attachedVolumes(vm.id))).toEqual(new Set([vm.boot.id, vm.data.id]))
      for (const v of [vm.boot, vm.data]) expect((await r1.cinder.get(v.id)).status).toBe('in-use')
      // RegionTwo: no server, the copies kept (a retry resumes from them) and marked as not to be used.
      expect(await r2.nova.findOptional(VM2)).toBeUndefined()
      const copies = await r2.cinder.findByMetadata('snapferry-pipeline', `move-${VM2}`)
      expect(copies).toHaveLength(2)
      for (const v of copies) {
        expect(v.status).toBe('available')
        expect(v.metadata['snapferry-state']).toBe('rolled-back')
      }
    }, 900_000)

    it('bad credentials, an unknown region, a missing volume and an API error name the cloud, region and object', async () => {
      const base = pipelineYaml(`errors-${TAG}`, VM1, '    []')
      const write = async (name: string, text: string) => {
        const f = path.join(work, name)
        await writeFile(f, text)
        return f
      }
      // Bad credentials: a secure.yaml with the wrong password.
      const badSecure = path.join(work, 'bad-secure.yaml')
      await writeFile(badSecure, 'clouds:\n  lab:\n    auth:\n      password: wrong\n')
      const creds = await snapferry(['plan', await write('e1.yaml', base)], {
        ...lab.env,
        OS_CLIENT_SECURE_FILE: badSecure,
      })
      expect(creds.code).toBe(1)
      expect(creds.stderr).toContain(
        `cloud 'lab': Keystone at ${lab.keystoneUrl} refused user 'admin' (HTTP 401`,
      )

      const region = await snapferry(
        [
          'plan',
          await write(
            'e2.yaml',
            base
              .replace('RegionTwo:\n      rbd', 'RegionThree:\n      rbd')
              .replace(/region: RegionTwo/g, 'region: RegionThree'),
          ),
        ],
        lab.env,
      )
      expect(region.code).toBe(1)
      expect(region.stderr).toContain(
        "region 'RegionThree' is not a region of cloud 'lab' (RegionOne, RegionTwo)",
      )

      const missing = await snapferry(
        ['plan', await write('e3.yaml', base.replace(`volume: ${VM1}-data`, 'volume: no-such-volume'))],
        lab.env,
      )
      expect(missing.code).toBe(1)
      expect(missing.stderr).toContain(
        "volume 'no-such-volume' not found in region 'RegionOne' of cloud 'lab'",
      )

      const api = await snapferry(
        [
          'run',
          await write(
            'e4.yaml',
            base.replace(
              'destination: { driver: cinder, region: RegionTwo }',
              'destination: { driver: cinder, region: RegionTwo, volumeType: no-such-type }',
            ),
          ),
        ],
        lab.env,
      )
      expect(api.code).toBe(1)
      expect(api.stderr).toContain(
        `cloud 'lab' region 'RegionTwo': creating volume ${VM1}-boot: block-storage POST http://`,
      )
      expect(api.stderr).toMatch(/\/volumes failed with HTTP 404: .*no-such-type/)
    }, 600_000)

    it('authenticates with an application credential from clouds.yaml', async () => {
      const { OpenStackSession: S } = await import('../../src/openstack/openstack-session.js')
      const admin = new S(loadCloud({ cloud: 'lab', env: { ...process.env, ...lab.env } }))
      const tokenUser = await admin.request<{ users: { id: string; name: string }[] }>(
        'identity',
        'RegionOne',
        'GET',
        '/users?name=admin',
      )
      const userId = tokenUser.body.users[0]?.id as string
      const created = await admin.request<{ application_credential: { id: string; secret: string } }>(
        'identity',
        'RegionOne',
        'POST',
        `/users/${userId}/application_credentials`,
        { body: { application_credential: { name: `snapferry-test-${Date.now()}` } } },
      )
      await admin.close()
      const { id, secret } = created.body.application_credential
      const clouds = path.join(work, 'appcred-clouds.yaml')
      await writeFile(
        clouds,
        `clouds:\n  appcred:\n    auth_type: v3applicationcredential\n    auth:\n      auth_url: ${lab.keystoneUrl}\n      application_credential_id: ${id}\n      application_credential_secret: ${secret}\n    regions: [RegionOne, RegionTwo]\n`,
      )
      const file = path.join(work, 'appcred.yaml')
      await writeFile(
        file,
        pipelineYaml(`appcred-${TAG}`, VM1, '    []').replace('cloud: lab', 'cloud: appcred'),
      )
      const r = await snapferry(['plan', file], {
        OS_CLIENT_CONFIG_FILE: clouds,
        OS_CLIENT_SECURE_FILE: '/nonexistent',
      })
      expect(r.stderr).toBe('')
      expect(r.code).toBe(0)
      expect(r.stdout).toContain(`openstack: boot: source Cinder volume ${VM1}-boot`)
      expect(r.stdout).not.toContain(secret)
    }, 120_000)
  },
)
