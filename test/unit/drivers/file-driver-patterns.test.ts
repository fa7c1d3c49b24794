/** Many random write patterns through the file driver: unaligned sizes, growth, shrink, zero regions. */
import { mkdtemp, open, rm, truncate, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { expect, it } from 'vitest'
import { FileDriver } from '../../../src/drivers/file/file-driver.js'
import { mulberry32, randInt, randomBytes } from '../../helpers/random.js'
import { ship } from '../../helpers/ship.js'

it('stays byte-identical over 40 seeded scenarios of 8 rounds each', async () => {
  for (let seed = 1; seed <= 40; seed++) {
    const rnd = mulberry32(seed * 7919)
    const dir = await mkdtemp(path.join(tmpdir(), 'sf-pat-'))
    try {
      const bs = [4096, 8192, 65536][seed % 3] as number
      const src = path.join(dir, 's.img')
      let size = randInt(rnd, 1, 600_000)
      await writeFile(src, '')
      await truncate(src, size)
      const a = new FileDriver({ path: src, blockSize: bs })
      const b = new FileDriver({ path: path.join(dir, 'd.img'), blockSize: bs })
      let prev: string | undefined
      for (let round = 0; round < 8; round++) {
        const fh = await open(src, 'r+')
        for (let w = randInt(rnd, 0, 12); w > 0; w--) {
          const off = randInt(rnd, 0, Math.max(0, size - 1))
          const len = randInt(rnd, 1, 70_000)
          const kind = rnd()
          const data =
            kind < 0.25 ? Buffer.alloc(len) : kind < 0.35 ? Buffer.alloc(len, 0xff) : randomBytes(rnd, len)
          await fh.write(data, 0, len, off)
        }
        await fh.close()
        const r = rnd()
        if (r < 0.15) size = randInt(rnd, 1, 900_000)
        else if (r < 0.2) size = 0
        if (r < 0.2) await truncate(src, size)
        const st = (await a.describe()).size
        size = st
        const to = `snapferry-s${seed}-r${round}`
        await ship(a, b, { from: prev, to })
        const [x, y] = await Promise.all([a.checksum('head'), b.checksum('head')])
        expect(y, `seed ${seed} round ${round} bs ${bs}`).toEqual(x)
        prev = to
      }
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  }
}, 120_000)
