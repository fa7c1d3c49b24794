/** The one place that maps a pipeline endpoint's `driver:` to an implementation. */
import type { EndpointConfig } from '../config/pipeline-config.js'
import { SnapferryError } from '../errors/snapferry-error.js'
import { FileDriver } from './file/file-driver.js'
import { RbdDriver } from './rbd/rbd-driver.js'
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
    case 'cinder':
      // Resolved to `rbd` by src/openstack/resolve-volumes.ts before any agent sees it.
      throw new SnapferryError('INTERNAL', `${label}: a cinder endpoint reached an agent unresolved`)
    case 'rbd':
      return new RbdDriver({
        pool: endpoint.pool,
        namespace: endpoint.namespace,
        image: endpoint.image,
        connection: {
          cluster: endpoint.cluster,
          conf: endpoint.conf,
          keyring: endpoint.keyring,
          id: endpoint.id,
          timeoutSeconds: endpoint.timeout / 1000,
        },
        wholeObject: endpoint.wholeObject,
        librbd: endpoint.librbd,
        stageDir: endpoint.stageDir,
        stageLimit: endpoint.stageLimit,
        label,
      })
  }
}
