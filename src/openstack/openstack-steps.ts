/**
 * Typed OpenStack runbook steps: stop/start a server, detach/attach volumes (through Nova), create a
 * server from the moved boot volume, set metadata, wait for a status. Each step records its API calls
 * (redacted) and returns its undo, so a failed cutover can put the source back the way it was.
 */
import type { OpenStackActionConfig, OpenStackStepConfig } from '../config/pipeline-config.js'
import { formatDuration } from '../config/units.js'
import type { RunbookStep, StepOutcome, StepPhase } from '../cutover/runbook.js'
import { SnapferryError } from '../errors/snapferry-error.js'
import type { Logger } from '../logging/logger.js'
import { MARK, type OpenStackRun } from './openstack-run.js'
import type { ApiCall } from './openstack-session.js'

export function describeAction(a: OpenStackActionConfig): string {
  switch (a.action) {
    case 'stop-server':
      return `stop server ${a.server} in ${a.region} (until SHUTOFF)`
    case 'start-server':
      return `start server ${a.server} in ${a.region} (until ACTIVE)`
    case 'detach-volumes':
      return `detach ${a.volumes ? `volumes ${a.volumes.join(', ')}` : 'the pipeline volumes (but the root volume)'} from server ${a.server} in ${a.region} (through Nova, until available)`
    case 'attach-volumes':
      return `attach volumes ${a.volumes.join(', ')} to server ${a.server} in ${a.region} (until in-use)`
    case 'create-server':
      return `create server ${a.server} in ${a.region} from volume ${a.bootVolume}${a.volumes.length ? ` with ${a.volumes.join(', ')}` : ''}, flavor ${a.flavor} (until ACTIVE)`
    case 'set-metadata':
      return `set metadata ${Object.keys(a.metadata).join(', ')} on server ${a.server} in ${a.region}`
    case 'wait-status':
      return `wait until ${a.server ? `server ${a.server}` : `volume ${a.volume}`} in ${a.region} is ${a.status}`
  }
}

export interface StepContext {
  readonly run: OpenStackRun
  readonly pipeline: string
  readonly log?: Logger | undefined
}

type Action = (signal?: AbortSignal) => Promise<{ output: string; undo?: Action | undefined }>

/** A runbook step that performs one typed OpenStack action and knows how to undo it. */
export function openstackStep(
  c: StepContext,
  entry: OpenStackStepConfig,
  phase: StepPhase,
  prefix: string = phase,
): RunbookStep {
  const act = action(c, entry.openstack)
  return recordedStep(c, `${prefix}:${entry.name}`, phase, act)
}

function recordedStep(c: StepContext, name: string, phase: StepPhase, act: Action): RunbookStep {
  return {
    name,
    kind: 'openstack',
    phase,
    async run(signal?: AbortSignal): Promise<StepOutcome> {
      const { value, calls } = await c.run.session.recording(() => act(signal))
      return {
        output: value.output,
        requests: calls.map(callSummary),
        ...(value.undo
          ? { undo: recordedStep(c, `undo:${name.replace(/^[a-z]+:/, '')}`, phase, value.undo) }
          : {}),
      }
    },
  }
}

/** What a step's result keeps of a call: no token, bodies already redacted. */
export function callSummary(c: ApiCall): Record<string, unknown> {
  return {
    method: c.method,
    url: c.url,
    status: c.status,
    ms: Math.round(c.durationMs),
    ...(c.requestId ? { requestId: c.requestId } : {}),
    ...(c.request === undefined ? {} : { request: c.request }),
  }
}

function action(c: StepContext, a: OpenStackActionConfig): Action {
  const timeout = a.timeout ?? c.run.config.waitTimeout
  const nova = c.run.nova(a.region)
  const cinder = c.run.cinder(a.region)
  const volumeIds = (names: readonly string[]) =>
    names.map((n) => ({ name: n, id: c.run.volumeIn(n, a.region).id }))

  const stop =
    (ref: string): Action =>
    async (signal) => {
      const s = await nova.find(ref, signal)
      if (s.status === 'SHUTOFF') return { output: `server ${s.name} (${s.id}) was already SHUTOFF` }
      await nova.action(s.id, 'os-stop', signal)
      const t0 = performance.now()
      await nova.waitFor(s.id, ['SHUTOFF'], timeout, signal, s.name)
      return {
        output: `server ${s.name} (${s.id}) SHUTOFF after ${formatDuration(performance.now() - t0)}`,
        undo: start(s.id),
      }
    }
  const start =
    (ref: string): Action =>
    async (signal) => {
      const s = await nova.find(ref, signal)
      if (s.status === 'ACTIVE') return { output: `server ${s.name} (${s.id}) was already ACTIVE` }
      await nova.action(s.id, 'os-start', signal)
      await nova.waitFor(s.id, ['ACTIVE'], timeout, signal, s.name)
      return { output: `server ${s.name} (${s.id}) ACTIVE`, undo: stop(s.id) }
    }
  const attach =
    (ref: string, vols: readonly { name: string; id: string }[]): Action =>
    async (signal) => {
      const s = await nova.find(ref, signal)
      const already = new Set(await nova.attachedVolumes(s.id, signal))
      const todo = vols.filter((v) => !already.has(v.id))
      for (const v of todo) {
        await nova.attach(s.id, v.id, signal)
        await cinder.waitFor(v.id, ['in-use'], timeout, signal, v.name)
      }
      return {
        output: todo.length
          ? `attached ${todo.map((v) => `${v.name} (${v.id})`).join(', ')} to server ${s.name}`
          : `volumes ${vols.map((v) => v.name).join(', ')} were already attached to server ${s.name}`,
        ...(todo.length ? { undo: detach(s.id, todo) } : {}),
      }
    }
  const detach =
    (ref: string, vols: readonly { name: string; id: string }[] | undefined): Action =>
    async (signal) => {
      const s = await nova.find(ref, signal)
      const attached = new Set(await nova.attachedVolumes(s.id, signal))
      // By default every pipeline volume but the root one, which Nova refuses to detach.
      const root = vols ? undefined : await nova.rootVolume(s, signal)
      const wanted =
        vols ??
        [...c.run.volumes.values()]
          .flatMap((v) =>
            [v.source, v.destination]
              .filter((side) => side?.region === a.region && side.volume)
              .map((side) => ({ name: v.name, id: side?.volume?.id as string })),
          )
          .filter((v) => v.id !== root)
      const todo = wanted.filter((v) => attached.has(v.id))
      for (const v of todo) {
        await nova.detach(s.id, v.id, signal)
        await cinder.waitFor(v.id, ['available'], timeout, signal, v.name)
      }
      return {
        output: todo.length
          ? `detached ${todo.map((v) => `${v.name} (${v.id})`).join(', ')} from server ${s.name}`
          : `no pipeline volume was attached to server ${s.name}`,
        ...(todo.length ? { undo: attach(s.id, todo) } : {}),
      }
    }

  switch (a.action) {
    case 'stop-server':
      return stop(a.server)
    case 'start-server':
      return start(a.server)
    case 'attach-volumes':
      return (signal) => attach(a.server, volumeIds(a.volumes))(signal)
    case 'detach-volumes':
      return (signal) => detach(a.server, a.volumes ? volumeIds(a.volumes) : undefined)(signal)
    case 'create-server':
      return async (signal) => {
        const devices = [
          { volumeId: c.run.volumeIn(a.bootVolume, a.region).id, bootIndex: 0 },
          ...a.volumes.map((n) => ({ volumeId: c.run.volumeIn(n, a.region).id, bootIndex: -1 })),
        ]
        const existing = await nova.findOptional(a.server, signal)
        if (existing) {
          if (existing.metadata?.[MARK.pipeline] !== c.pipeline) {
            throw new SnapferryError(
              'OPENSTACK_AMBIGUOUS',
              `a server named '${a.server}' already exists in ${nova.where} (${existing.id}) and snapferry did not create it`,
              {
                hint: 'rename or delete it, or give the new server another name',
                details: { server: existing.id },
              },
            )
          }
          // Created by an earlier attempt of this pipeline: finish waiting for it rather than make another.
          await nova.waitFor(existing.id, ['ACTIVE'], timeout, signal, a.server)
          return {
            output: `server ${a.server} (${existing.id}) from an earlier attempt is ACTIVE`,
            undo: remove(existing.id, a.server),
          }
        }
        const flavorRef = await nova.flavorId(a.flavor, signal)
        const id = await nova.create(
          {
            name: a.server,
            flavorRef,
            devices,
            metadata: { ...a.metadata, [MARK.pipeline]: c.pipeline },
            ...(a.availabilityZone ? { availabilityZone: a.availabilityZone } : {}),
            networks: a.networks,
          },
          signal,
        )
        try {
          const t0 = performance.now()
          await nova.waitFor(id, ['ACTIVE'], timeout, signal, a.server)
          return {
            output: `server ${a.server} (${id}) ACTIVE in ${a.region} after ${formatDuration(performance.now() - t0)}, booted from ${a.bootVolume}${a.volumes.length ? `, with ${a.volumes.join(', ')}` : ''}`,
            undo: remove(id, a.server),
          }
        } catch (e) {
          // Leave nothing half-made behind: the server that never came up goes, its volumes are freed.
          await remove(
            id,
            a.server,
          )(undefined).catch((err: unknown) =>
            c.log?.warn({ err, server: id }, 'deleting the server that failed to start failed'),
          )
          throw e
        }
      }
    case 'set-metadata':
      return async (signal) => {
        const s = await nova.find(a.server, signal)
        const before = { ...s.metadata }
        await nova.setMetadata(s.id, { ...a.metadata }, signal)
        return {
          output: `server ${s.name}: metadata ${Object.keys(a.metadata).join(', ')} set`,
          undo: async (sig) => {
            const restore = Object.fromEntries(
              Object.keys(a.metadata)
                .filter((k) => k in before)
                .map((k) => [k, before[k] as string]),
            )
            if (Object.keys(restore).length) await nova.setMetadata(s.id, restore, sig)
            for (const k of Object.keys(a.metadata).filter((k) => !(k in before)))
              await nova.deleteMetadataKey(s.id, k, sig)
            return { output: `server ${s.name}: metadata restored` }
          },
        }
      }
    case 'wait-status':
      return async (signal) => {
        if (a.server) {
          const s = await nova.find(a.server, signal)
          await nova.waitFor(s.id, [a.status], timeout, signal, s.name)
          return { output: `server ${s.name} is ${a.status}` }
        }
        if (!a.volume) {
          throw new SnapferryError('CONFIG_INVALID', 'wait-status needs `server:` or `volume:`', {
            hint: 'name the server or the pipeline volume to wait for',
          })
        }
        const v = c.run.volumeIn(a.volume, a.region)
        await cinder.waitFor(v.id, [a.status], timeout, signal, a.volume)
        return { output: `volume ${a.volume} (${v.id}) is ${a.status}` }
      }
  }

  function remove(id: string, label: string): Action {
    return async (signal) => {
      await nova.delete(id, signal)
      await nova.waitGone(id, timeout, signal)
      return { output: `server ${label} (${id}) deleted` }
    }
  }
}
