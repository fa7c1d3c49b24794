/**
 * The `rbd` command line, run with argv arrays (never a shell), the connection options of one cluster,
 * and timeouts on every call: the rbd CLI otherwise waits 300 s to connect and forever on operations.
 */
import { type ChildProcessByStdio, spawn } from 'node:child_process'
import type { Readable, Writable } from 'node:stream'
import { SnapferryError } from '../../errors/snapferry-error.js'
import { rbdError } from './rbd-errors.js'

export interface RbdConnection {
  readonly cluster?: string | undefined
  readonly conf?: string | undefined
  readonly keyring?: string | undefined
  readonly id?: string | undefined
  /** Seconds for connecting and for each RADOS operation. */
  readonly timeoutSeconds: number
}

export function connectionArgs(c: RbdConnection): string[] {
  const t = String(Math.max(1, Math.round(c.timeoutSeconds)))
  return [
    ...(c.cluster ? ['--cluster', c.cluster] : []),
    ...(c.conf ? ['--conf', c.conf] : []),
    ...(c.keyring ? ['--keyring', c.keyring] : []),
    ...(c.id ? ['--id', c.id] : []),
    '--client-mount-timeout',
    t,
    '--rados-osd-op-timeout',
    t,
    '--rados-mon-op-timeout',
    t,
  ]
}

export interface RbdRunResult {
  readonly stdout: string
  readonly stderr: string
}

const STDERR_TAIL = 8192

/** Run a short rbd command to completion; a non-zero exit becomes a mapped SnapferryError. */
export function rbd(
  c: RbdConnection,
  args: readonly string[],
  what: string,
  signal?: AbortSignal,
): Promise<RbdRunResult> {
  const argv = [...connectionArgs(c), ...args]
  return new Promise((resolve, reject) => {
    const p = spawn('rbd', argv, { stdio: ['ignore', 'pipe', 'pipe'], ...(signal ? { signal } : {}) })
    let stdout = ''
    let stderr = ''
    p.stdout.setEncoding('utf8').on('data', (s: string) => {
      stdout += s
    })
    p.stderr.setEncoding('utf8').on('data', (s: string) => {
      stderr = (stderr + s).slice(-STDERR_TAIL)
    })
    p.on('error', (e) => reject(spawnError(e)))
    p.on('close', (code) => {
      if (code === 0) resolve({ stdout, stderr })
      else reject(rbdError(what, argv, code, stderr))
    })
  })
}

export type StreamingRbd = ChildProcessByStdio<Writable | null, Readable | null, Readable> & {
  /** Resolves when rbd exits 0; rejects with the mapped error otherwise. */
  readonly done: Promise<void>
}

/** Start an rbd command whose stdin or stdout carries a stream (export-diff, import-diff, export). */
export function rbdStream(
  c: RbdConnection,
  args: readonly string[],
  what: string,
  io: { stdin: boolean; stdout: boolean },
): StreamingRbd {
  const argv = [...connectionArgs(c), ...args]
  return streamingProcess('rbd', argv, io, { what, name: 'rbd', argv })
}

/** How a streaming process is named in its errors: what it was doing, and as which program with which arguments. */
export interface ProcessNaming {
  what: string
  name: string
  argv: readonly string[]
}

/**
 * A process that streams like rbd does and fails in rbd's words (the librbd exporter, librbd-export-py.ts):
 * `done` rejects with the error rbd-errors.ts maps from its exit status and stderr, named as `naming` says
 * when it exits (not a whole Python program). A process started before its job is known (a warm
 * exporter, librbd-exporters.ts) is named once it gets one.
 */
export function streamingProcess(
  command: string,
  argv: readonly string[],
  io: { stdin: boolean; stdout: boolean },
  naming: ProcessNaming,
): StreamingRbd {
  const p = spawn(command, argv, {
    stdio: [io.stdin ? 'pipe' : 'ignore', io.stdout ? 'pipe' : 'ignore', 'pipe'],
  })
  let stderr = ''
  p.stderr?.setEncoding('utf8').on('data', (s: string) => {
    stderr = (stderr + s).slice(-STDERR_TAIL)
  })
  const done = new Promise<void>((resolve, reject) => {
    p.on('error', (e) => reject(spawnError(e)))
    p.on('close', (code, sig) => {
      if (code === 0) resolve()
      else reject(rbdError(naming.what, naming.argv, code ?? (sig ? 128 : 1), stderr, naming.name))
    })
  })
  done.catch(() => {})
  return Object.assign(p as unknown as StreamingRbd, { done })
}

/**
 * Stop an `rbd import-diff -` that has not finished: close its stdin so it fails on the short stream (exit
 * 74, no end snapshot) and closes the image itself; only if it is still there after `graceMs`, kill it.
 * A killed rbd leaves its watch (and any exclusive lock it took) on the image until the OSD times the
 * watch out, 30 s by default, and every next write to that image (the apply marker, the next import)
 * waits that long.
 */
export async function stopImportDiff(p: StreamingRbd, graceMs = 5000): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return
  p.stdin?.end()
  const exited = await Promise.race([
    p.done.then(
      () => true,
      () => true,
    ),
    new Promise<false>((r) => setTimeout(r, graceMs, false).unref()),
  ])
  if (!exited) p.kill('SIGKILL')
}

function spawnError(e: Error): SnapferryError {
  return new SnapferryError('RBD_CLI_FAILED', `cannot run rbd: ${e.message}`, {
    cause: e,
    hint: 'install the Ceph client on this host: apt-get install ceph-common',
  })
}
