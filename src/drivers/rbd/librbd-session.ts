/**
 * One open librbd session per cluster connection and process: a python3-rbd child (librbd-session-py.ts)
 * that connected once and answers the short calls (snapshots, listings, diffs, image-meta) in
 * milliseconds, where each `rbd` process pays a start and a cluster connection (~0.1–0.3 s here).
 * Streams (export-diff, import-diff, export) stay with the rbd CLI. docs/RBD.md.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { SnapferryError } from '../../errors/snapferry-error.js'
import { LIBRBD_SESSION_PY } from './librbd-session-py.js'
import type { RbdConnection } from './rbd-cli.js'
import { librbdError } from './rbd-errors.js'

/** Debian's and RHEL's python3-rbd install into the system interpreter, not into a venv or pyenv. */
export const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3'
const STDERR_TAIL = 4096

interface Reply {
  readonly id?: number
  readonly ready?: boolean
  readonly ok?: boolean
  readonly result?: unknown
  readonly errno?: number
  readonly error?: string
}

interface Pending {
  resolve(v: unknown): void
  reject(e: Error): void
  readonly what: string
}

export class LibrbdSession {
  readonly #child: ChildProcessWithoutNullStreams
  readonly #pending = new Map<number, Pending>()
  #next = 1
  #ended: Error | undefined
  #stderr = ''

  private constructor(child: ChildProcessWithoutNullStreams) {
    this.#child = child
  }

  /**
   * Start a session; resolves undefined when librbd is not usable here (no python3-rbd, or the connection
   * failed), and the caller keeps to the rbd CLI, which then reports any connection error in its words.
   */
  static async start(conn: RbdConnection): Promise<LibrbdSession | undefined> {
    const child = spawn(PYTHON, ['-c', LIBRBD_SESSION_PY, JSON.stringify(sessionArgs(conn))], {
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    const s = new LibrbdSession(child)
    const ready = await s.#listen(conn.timeoutSeconds * 1000 + 10_000)
    if (!ready) {
      child.kill()
      return undefined
    }
    s.#idle()
    return s
  }

  /** The first line says whether the session connected; every later line answers one request. */
  #listen(timeoutMs: number): Promise<boolean> {
    return new Promise((resolveReady) => {
      const timer = setTimeout(() => resolveReady(false), timeoutMs)
      const child = this.#child
      child.stderr.setEncoding('utf8').on('data', (s: string) => {
        this.#stderr = (this.#stderr + s).slice(-STDERR_TAIL)
      })
      child.stdin.on('error', () => {})
      const lines = createInterface({ input: child.stdout })
      lines.on('line', (line) => {
        let r: Reply
        try {
          r = JSON.parse(line) as Reply
        } catch {
          return
        }
        if (r.ready !== undefined) {
          clearTimeout(timer)
          resolveReady(r.ready)
          return
        }
        const p = this.#pending.get(r.id ?? -1)
        if (!p) return
        this.#pending.delete(r.id as number)
        this.#idle()
        if (r.ok) p.resolve(r.result)
        else p.reject(librbdError(p.what, r.errno ?? 0, r.error ?? 'unknown error'))
      })
      const end = (why: string) => {
        clearTimeout(timer)
        resolveReady(false)
        this.#ended ??= new SnapferryError(
          'RBD_CLI_FAILED',
          `the librbd session (python3-rbd) ended: ${why}${this.#stderr ? `: ${this.#stderr.trim().split('\n').slice(-2).join('; ')}` : ''}`,
          { transient: true, hint: 'snapferry starts a new session for the next call; see the log' },
        )
        for (const p of this.#pending.values()) p.reject(this.#ended)
        this.#pending.clear()
      }
      child.on('error', (e) => end(e.message))
      child.on('close', (code, sig) => end(sig ? `killed by ${sig}` : `exit ${code}`))
    })
  }

  /** The python3 process (for tests and logs). */
  get pid(): number | undefined {
    return this.#child.pid
  }

  get ended(): boolean {
    return this.#ended !== undefined
  }

  /** One call; `what` names it in errors. An abort rejects at once (the call itself runs to its end). */
  call<T>(op: string, args: Record<string, unknown>, what: string, signal?: AbortSignal): Promise<T> {
    if (this.#ended) return Promise.reject(this.#ended)
    signal?.throwIfAborted()
    const id = this.#next++
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => {
        if (this.#pending.delete(id)) this.#idle()
        reject(signal?.reason)
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      this.#pending.set(id, {
        what,
        resolve: (v) => {
          signal?.removeEventListener('abort', onAbort)
          resolve(v as T)
        },
        reject: (e) => {
          signal?.removeEventListener('abort', onAbort)
          reject(e)
        },
      })
      this.#idle()
      this.#child.stdin.write(`${JSON.stringify({ id, op, ...args })}\n`)
    })
  }

  /** An idle session must not keep the process alive (it ends when stdin closes); a busy one must. */
  #idle(): void {
    const streams = [this.#child.stdout, this.#child.stderr, this.#child.stdin] as unknown as {
      ref(): void
      unref(): void
    }[]
    if (this.#pending.size === 0) {
      this.#child.unref()
      for (const s of streams) s.unref()
    } else {
      this.#child.ref()
      for (const s of streams) s.ref()
    }
  }

  close(): void {
    this.#child.stdin.end()
  }
}

/** The connection as the Python side's connect() takes it (librbd-session-py.ts). */
export function sessionArgs(c: RbdConnection): Record<string, unknown> {
  return {
    cluster: c.cluster ?? null,
    conf: c.conf ?? null,
    keyring: c.keyring ?? null,
    id: c.id ?? null,
    timeoutSeconds: Math.max(1, Math.round(c.timeoutSeconds)),
  }
}

const sessions = new Map<string, Promise<LibrbdSession | undefined>>()

/**
 * The process's session for this connection, started on first use. Undefined (use the CLI) when librbd
 * is not usable; a session that ended is replaced by a new one on the next call.
 */
export async function librbdSession(conn: RbdConnection): Promise<LibrbdSession | undefined> {
  const key = JSON.stringify(sessionArgs(conn))
  let s = sessions.get(key)
  if (s) {
    const got = await s
    if (!got?.ended) return got
  }
  s = LibrbdSession.start(conn)
  sessions.set(key, s)
  return s
}
