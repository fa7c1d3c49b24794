/** How an endpoint is named to people (messages, hooks) and compared (no two volumes share a target). */
import type { EndpointConfig } from './pipeline-config.js'

/** "/srv/a.img" or "volumes/volume-123 (cluster regionb)". */
export function endpointLocation(ep: EndpointConfig): string {
  if (ep.driver === 'file') return ep.path
  if (ep.driver === 'cinder') return `cinder volume ${ep.volume ?? '(to be created)'} in ${ep.region}`
  const spec = `${ep.pool}/${ep.namespace ? `${ep.namespace}/` : ''}${ep.image}`
  const where = ep.conf ?? ep.cluster
  return where ? `${spec} (${where})` : spec
}

/** Equal keys mean the same storage. */
export function endpointKey(ep: EndpointConfig): string {
  return `${ep.driver === 'cinder' ? ep.region : ep.host}:${ep.driver}:${endpointLocation(ep)}`
}
