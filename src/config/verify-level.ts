/** Which verification a volume really gets: `records` needs block-hash records on both sides. */
import type { PipelineConfig, VolumeConfig } from './pipeline-config.js'

export type VerifyLevel = PipelineConfig['cutover']['verify']

/**
 * Records are comparable between two file endpoints that hash the same block size; between two rbd
 * images (frozen snapshots) `records` checks the chain of verified deltas and the final snapshot.
 */
export function effectiveVerify(cfg: PipelineConfig, v: VolumeConfig): VerifyLevel {
  const level = cfg.cutover.verify
  if (level !== 'records') return level
  const comparable =
    (v.source.driver === 'file' &&
      v.destination.driver === 'file' &&
      v.source.blockSize === v.destination.blockSize) ||
    (frozen(v.source.driver) && frozen(v.destination.driver))
  return comparable ? 'records' : 'full'
}

/** rbd images, and Cinder volumes (resolved to their rbd images). */
const frozen = (d: string) => d === 'rbd' || d === 'cinder'

export function verifyByVolume(cfg: PipelineConfig): Record<string, VerifyLevel> {
  return Object.fromEntries(cfg.volumes.map((v) => [v.name, effectiveVerify(cfg, v)]))
}
