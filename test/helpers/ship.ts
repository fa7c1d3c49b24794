/** Move one delta between two drivers in-process (the engine's relay), for driver tests. */
import type { Extent, VolumeDriver } from '../../src/drivers/volume-driver.js'
import { relayDelta } from '../../src/replication/relay-delta.js'

export async function ship(
  src: VolumeDriver,
  dst: VolumeDriver,
  opts: {
    from?: string
    to: string
    include?: Extent[]
    repair?: boolean
    overwrite?: boolean
    create?: boolean
  },
) {
  if (opts.create !== false) await src.createSnapshot(opts.to)
  return relayDelta({
    source: src,
    destination: dst,
    label: 'test volume',
    exportRequest: { fromSnap: opts.from, toSnap: opts.to, include: opts.include },
    importRequest: { fromSnap: opts.from, toSnap: opts.to, repair: opts.repair, overwrite: opts.overwrite },
  })
}
