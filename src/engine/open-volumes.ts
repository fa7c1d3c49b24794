/** Start the agents a pipeline needs (one per host and side) and open each volume's two drivers. */
import { AgentClient } from '../agent-protocol/agent-client.js'
import { RemoteVolumeDriver } from '../agent-protocol/remote-volume-driver.js'
import { endpointLocation } from '../config/endpoint-location.js'
import type { EndpointConfig, PipelineConfig } from '../config/pipeline-config.js'
import type { Logger } from '../logging/logger.js'
import type { VolumePair } from '../replication/volume-pair.js'
import { launcherFor } from '../transports/launcher-registry.js'

export interface OpenVolumes {
  readonly pairs: readonly VolumePair[]
  close(): Promise<void>
}

export async function openVolumes(
  cfg: PipelineConfig,
  log: Logger,
  signal?: AbortSignal,
): Promise<OpenVolumes> {
  const clients = new Map<string, Promise<AgentClient>>()
  const clientFor = (side: 'source' | 'destination', ep: EndpointConfig) => {
    // One agent per host and side: source and destination are separate hosts in real moves.
    if (ep.driver === 'cinder')
      throw new Error(
        `volume endpoint in ${ep.region} reached openVolumes unresolved (resolveOpenStack first)`,
      )
    const key = `${side}@${ep.host}`
    let c = clients.get(key)
    if (!c) {
      c = launcherFor(ep.host, cfg, log)
        .launch(signal)
        .then((conn) => AgentClient.connect(conn, log))
      clients.set(key, c)
    }
    return c
  }
  const close = async () => {
    await Promise.allSettled([...clients.values()].map(async (c) => (await c).close()))
  }
  try {
    const pairs: VolumePair[] = []
    for (const v of cfg.volumes) {
      const [s, d] = await Promise.all([
        clientFor('source', v.source),
        clientFor('destination', v.destination),
      ])
      pairs.push({
        name: v.name,
        config: v,
        source: await RemoteVolumeDriver.open(
          s,
          { endpoint: v.source, label: `volume ${v.name} (source ${endpointLocation(v.source)})` },
          signal,
        ),
        destination: await RemoteVolumeDriver.open(
          d,
          {
            endpoint: v.destination,
            label: `volume ${v.name} (destination ${endpointLocation(v.destination)})`,
          },
          signal,
        ),
      })
    }
    return { pairs, close }
  } catch (e) {
    await close()
    throw e
  }
}
