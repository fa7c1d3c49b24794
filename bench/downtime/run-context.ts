/** What a method run needs, and running a command on the source host (namespace A) where the operator works. */
import { spawn } from 'node:child_process'
import type { CephRegions } from '../lib/ceph-regions.js'
import type { TwoHosts } from '../lib/two-hosts.js'
import type { Writer } from './workload.js'

export interface RunContext {
  readonly regions: CephRegions
  readonly repoRoot: string
  readonly dir: string
  readonly srcImage: string
  readonly dstImage: string
  readonly writer: Writer
}

/** Run argv inside namespace A (the source host, where the operator's controller runs). */
export function runInA(
  hosts: TwoHosts,
  argv: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const full = hosts.inA(argv)
    const { SSH_AUTH_SOCK: _drop, ...base } = process.env
    const p = spawn(full[0] as string, full.slice(1), {
      env: { ...base, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    let err = ''
    p.stdout.on('data', (b: Buffer) => {
      out += b.toString()
    })
    p.stderr.on('data', (b: Buffer) => {
      err += b.toString()
    })
    p.on('close', (code) => resolve({ code, out, err }))
  })
}
