/** Run the real snapferry CLI (dist) and build throwaway scenarios: images, a pipeline file, a state dir. */
import { execFile, spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { mkdtemp, open, rm, truncate, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { pipeline } from 'node:stream/promises'
import { readJournal } from '../../src/state/journal.js'
import type { JournalEntry } from '../../src/state/journal-entries.js'
import { CLI_ENTRY, REPO_ROOT } from './built.js'
import { mulberry32, randInt, randomBytes } from './random.js'

export interface CliResult {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

export function snapferry(
  args: readonly string[],
  env: Record<string, string> = {},
  timeoutMs = 120_000,
): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI_ENTRY, ...args],
      { cwd: REPO_ROOT, env: { ...process.env, ...env }, timeout: timeoutMs, maxBuffer: 16 << 20 },
      (err, stdout, stderr) => {
        const code = err ? ((err as { code?: number }).code ?? null) : 0
        resolve({ code: typeof code === 'number' ? code : null, stdout, stderr })
      },
    )
  })
}

/** Start the CLI and return the child (for tests that kill it or talk to it while it runs). */
export function snapferrySpawn(args: readonly string[], env: Record<string, string> = {}) {
  return spawn(process.execPath, [CLI_ENTRY, ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
}

/** Start `snapferry run` and wait until it reports holding the copy warm; returns its output so far and its exit. */
export async function runUntilHolding(pipelineFile: string) {
  const run = snapferrySpawn(['run', pipelineFile])
  const seen = { out: '' }
  run.stdout.on('data', (b: Buffer) => {
    seen.out += b.toString()
  })
  const exited = new Promise<number | null>((r) => run.on('exit', (c) => r(c)))
  for (let i = 0; i < 400 && !seen.out.includes('converged: holding'); i++)
    await new Promise((r) => setTimeout(r, 50))
  return { run, exited, output: () => seen.out }
}

export async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256')
  await pipeline(createReadStream(file), h)
  return h.digest('hex')
}

export interface Scenario {
  readonly dir: string
  readonly src: string
  readonly dst: string
  readonly pipeline: string
  readonly stateDir: string
  journal(): Promise<JournalEntry[]>
  scribble(seed: number, writes: number): Promise<void>
  cleanup(): Promise<void>
}

/** A source image with seeded content and a pipeline moving it to dst; `extra` is appended YAML. */
export async function scenario(opts: {
  size: number
  blockSize?: string
  extra?: string
  name?: string
}): Promise<Scenario> {
  const dir = await mkdtemp(path.join(tmpdir(), 'sf-e2e-'))
  const src = path.join(dir, 'src.img')
  const dst = path.join(dir, 'dst.img')
  await writeFile(src, '')
  await truncate(src, opts.size)
  const s: Scenario = {
    dir,
    src,
    dst,
    pipeline: path.join(dir, 'pipeline.yaml'),
    stateDir: path.join(dir, 'state'),
    journal: () => readJournal(path.join(dir, 'state')),
    async scribble(seed, writes) {
      const rnd = mulberry32(seed)
      const fh = await open(src, 'r+')
      for (let i = 0; i < writes; i++) {
        const len = randInt(rnd, 1, 200_000)
        await fh.write(
          rnd() < 0.2 ? Buffer.alloc(len) : randomBytes(rnd, len),
          0,
          len,
          randInt(rnd, 0, opts.size - len),
        )
      }
      await fh.close()
    },
    cleanup: () => rm(dir, { recursive: true, force: true }),
  }
  await writeFile(
    s.pipeline,
    `apiVersion: snapferry/v1
kind: Pipeline
name: ${opts.name ?? 'e2e'}
volumes:
  - name: disk
    source: { driver: file, path: src.img, blockSize: ${opts.blockSize ?? '16KiB'} }
    destination: { driver: file, path: dst.img, blockSize: ${opts.blockSize ?? '16KiB'} }
stateDir: state
${opts.extra ?? ''}`,
  )
  return s
}
