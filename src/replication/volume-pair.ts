/** One volume of a pipeline with its two sides, however they are reached (in-process or behind an agent). */
import type { VolumeConfig } from '../config/pipeline-config.js'
import type { VolumeDriver } from '../drivers/volume-driver.js'

export interface VolumePair {
  readonly name: string
  readonly config: VolumeConfig
  readonly source: VolumeDriver
  readonly destination: VolumeDriver
}
