/** The one place that maps a pipeline endpoint's `driver:` to an implementation. */
import type { EndpointConfig } from '../config/pipeline-config.js'
import { FileDriver } from './file/file-driver.js'
import type { VolumeDriver } from './volume-driver.js'

export function createDriver(endpoint: EndpointConfig, label: string): VolumeDriver {
  switch (endpoint.driver) {
    case 'file':
      return new FileDriver({
        path: endpoint.path,
        blockSize: endpoint.blockSize,
        stateDir: endpoint.stateDir,
        label,
      })
  }
}

export const DRIVER_NAMES = ['file'] as const
