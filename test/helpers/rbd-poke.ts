/** Change an rbd image behind snapferry's back, with the real rbd CLI: a one-record diff into import-diff. */
import { spawn } from 'node:child_process'
import { encodeDiffV1 } from '../../src/delta-format/diff-encoder.js'
import type { Cluster } from './ceph.js'

export async function imageSize(c: Cluster, spec: string): Promise<number | undefined> {
  try {
    return (JSON.parse(await c.rbd('info', '--format', 'json', spec)) as { size: number }).size
  } catch {
    return undefined
  }
}

/** Write `data` at `offset` of the image's head (creating the image with `createSize` if missing). */
export async function rbdWrite(
  c: Cluster,
  spec: string,
  offset: number,
  data: Buffer,
  createSize?: number,
): Promise<void> {
  let size = await imageSize(c, spec)
  if (size === undefined) {
    if (createSize === undefined) throw new Error(`${spec} does not exist`)
    await c.rbd('create', '--size', `${createSize}B`, spec)
    size = createSize
  }
  const bytes: Buffer[] = []
  for await (const b of encodeDiffV1({ size }, [{ kind: 'write', offset, data }])) bytes.push(b)
  await new Promise<void>((resolve, reject) => {
    const p = spawn('rbd', ['--conf', c.conf, 'import-diff', '--no-progress', '-', spec], {
      stdio: ['pipe', 'ignore', 'pipe'],
    })
    let err = ''
    p.stderr.on('data', (b: Buffer) => {
      err += b.toString()
    })
    p.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`rbd import-diff: ${err}`))))
    p.stdin.end(Buffer.concat(bytes))
  })
}
