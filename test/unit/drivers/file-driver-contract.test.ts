import { mkdtemp, rm, truncate, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { FileDriver } from '../../../src/drivers/file/file-driver.js'
import { runVolumeDriverContract } from '../../contract/volume-driver-contract.js'
import { pwrite } from '../../helpers/files.js'

for (const blockSize of [4096, 64 * 1024]) {
  runVolumeDriverContract({
    name: `file driver (${blockSize / 1024} KiB blocks)`,
    create: async (size) => {
      const dir = await mkdtemp(path.join(tmpdir(), 'sf-file-'))
      const src = path.join(dir, 'src.img')
      const dst = path.join(dir, 'dst.img')
      await writeFile(src, '')
      await truncate(src, size)
      return {
        source: new FileDriver({ path: src, blockSize }),
        destination: new FileDriver({ path: dst, blockSize }),
        write: (side, off, data) => pwrite(side === 'source' ? src : dst, off, data),
        resize: (_side, n) => truncate(src, n),
        cleanup: () => rm(dir, { recursive: true, force: true }),
      }
    },
  })
}
