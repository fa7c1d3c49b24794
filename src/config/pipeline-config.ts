/** The validated, fully defaulted, frozen pipeline config that the rest of snapferry consumes. */
import type { z } from 'zod'
import type { cinderEndpointSchema, openstackActionSchema, openstackStepSchema } from './openstack-schema.js'
import type {
  endpointSchema,
  fileEndpointSchema,
  hookSchema,
  openstackSchema,
  pipelineSchema,
  rbdEndpointSchema,
  volumeSchema,
} from './pipeline-schema.js'

type DeepReadonly<T> = T extends (infer U)[]
  ? readonly DeepReadonly<U>[]
  : T extends object
    ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
    : T

export type PipelineConfig = DeepReadonly<z.output<typeof pipelineSchema>> & {
  /** Absolute path of the pipeline file (or '<inline>'). */
  readonly file: string
  /** Absolute state directory (journal, lock, log). */
  readonly stateDir: string
}
export type VolumeConfig = DeepReadonly<z.output<typeof volumeSchema>>
export type EndpointConfig = DeepReadonly<z.output<typeof endpointSchema>>
export type FileEndpointConfig = DeepReadonly<z.output<typeof fileEndpointSchema>>
export type RbdEndpointConfig = DeepReadonly<z.output<typeof rbdEndpointSchema>>
export type HookConfig = DeepReadonly<z.output<typeof hookSchema>>
export type CinderEndpointConfig = DeepReadonly<z.output<typeof cinderEndpointSchema>>
export type OpenStackConfig = DeepReadonly<z.output<typeof openstackSchema>>
export type OpenStackStepConfig = DeepReadonly<z.output<typeof openstackStepSchema>>
export type OpenStackActionConfig = DeepReadonly<z.output<typeof openstackActionSchema>>
/** A cutover entry: a shell hook or a typed OpenStack step. */
export type RunbookEntryConfig = HookConfig | OpenStackStepConfig

export function isOpenStackStep(e: RunbookEntryConfig): e is OpenStackStepConfig {
  return 'openstack' in e
}

export function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const v of Object.values(value)) deepFreeze(v)
  }
  return value
}
