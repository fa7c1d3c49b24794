/** How OpenStack objects and API versions are referred to: ids versus names, microversions. */
export const UUID_PATTERN = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i

/**
 * The microversion to send: the cloud's pin (`compute_api_version: 2.79` in clouds.yaml) when it is at
 * least what snapferry needs, else what it needs. A bare major version ("3", "2") pins nothing.
 */
export function pickMicroversion(required: string, pinned: string | undefined): string {
  if (!pinned || !/^\d+\.\d+$/.test(pinned)) return required
  const [ra, rb] = required.split('.').map(Number) as [number, number]
  const [pa, pb] = pinned.split('.').map(Number) as [number, number]
  return pa > ra || (pa === ra && pb >= rb) ? pinned : required
}
