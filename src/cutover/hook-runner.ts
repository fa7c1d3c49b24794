/** Runs a cutover hook with a timeout, the environment it needs, and its output captured. */
import { spawn } from 'node:child_process'
import type { HookConfig } from '../config/pipeline-config.js'

export interface HookResult {
  readonly status: 'ok' | 'failed'
  readonly exitCode: number | null
  readonly signal: string | null
  readonly timedOut: boolean
  readonly durationMs: number
  /** stdout and stderr interleaved, the last 64 KiB. */
  readonly output: string
}

const OUTPUT_TAIL = 64 * 1024
const KILL_GRACE_MS = 5000

export function runHook(
  hook: HookConfig,
  env: Readonly<Record<string, string>>,
  signal?: AbortSignal,
): Promise<HookResult> {
  const t0 = performance.now()
  const [cmd, args] =
    typeof hook.run === 'string' ? ['/bin/sh', ['-c', hook.run]] : [hook.run[0] as string, hook.run.slice(1)]
  return new Promise((resolve) => {
    let output = ''
    let timedOut = false
    const child = spawn(cmd, args, {
      cwd: hook.cwd,
      env: { ...process.env, ...env, ...hook.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // its own process group, so a timeout kills what it started too
    })
    const collect = (b: Buffer) => {
      output = (output + b.toString('utf8')).slice(-OUTPUT_TAIL)
    }
    child.stdout.on('data', collect)
    child.stderr.on('data', collect)
    const killGroup = (sig: NodeJS.Signals) => {
      try {
        if (child.pid) process.kill(-child.pid, sig)
      } catch {}
    }
    const timer = setTimeout(() => {
      timedOut = true
      killGroup('SIGTERM')
      setTimeout(() => killGroup('SIGKILL'), KILL_GRACE_MS).unref()
    }, hook.timeout)
    const onAbort = () => killGroup('SIGTERM')
    signal?.addEventListener('abort', onAbort, { once: true })
    child.on('error', (e) => {
      clearTimeout(timer)
      resolve({
        status: 'failed',
        exitCode: null,
        signal: null,
        timedOut: false,
        durationMs: performance.now() - t0,
        output: `cannot run ${cmd}: ${e.message}`,
      })
    })
    child.on('close', (code, sig) => {
      clearTimeout(timer)
      signal?.removeEventListener('abort', onAbort)
      resolve({
        status: code === 0 && !timedOut ? 'ok' : 'failed',
        exitCode: code,
        signal: sig,
        timedOut,
        durationMs: performance.now() - t0,
        output,
      })
    })
  })
}
