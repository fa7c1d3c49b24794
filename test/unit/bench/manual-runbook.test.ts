/**
 * The manual runbook script's round logic (bench/downtime/manual-runbook.sh), with `rbd` and `ssh` replaced
 * by stand-ins that log their arguments: which snapshots it takes and which delta the final round ships,
 * with and without the operator's time budget (WARM_UNTIL). The real rbd and OpenSSH run in the bench.
 */
import { spawnSync } from 'node:child_process'
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const SCRIPT = fileURLToPath(new URL('../../../bench/downtime/manual-runbook.sh', import.meta.url))
let bin: string

beforeAll(async () => {
  bin = await mkdtemp(path.join(tmpdir(), 'sf-manual-'))
  // rbd: `info` answers with a size, everything else is logged; ssh logs its remote command.
  await writeFile(
    path.join(bin, 'rbd'),
    `#!/bin/bash\nfor a in "$@"; do [ "$a" = info ] && { echo '{"size":1073741824}'; exit 0; }; done\necho "rbd $*" >> "$LOG"\n`,
  )
  await writeFile(path.join(bin, 'ssh'), `#!/bin/bash\ncat > /dev/null\necho "ssh \${@: -1}" >> "$LOG"\n`)
  await chmod(path.join(bin, 'rbd'), 0o755)
  await chmod(path.join(bin, 'ssh'), 0o755)
})
afterAll(() => rm(bin, { recursive: true, force: true }))

function runbook(rounds: string, env: Record<string, string> = {}) {
  const log = path.join(bin, `log-${Math.random().toString(36).slice(2)}`)
  const r = spawnSync('bash', [SCRIPT, 'rbd/src', 'root@dst', 'rbd/dst', rounds], {
    encoding: 'utf8',
    env: {
      ...process.env,
      PATH: `${bin}:${process.env.PATH}`,
      LOG: log,
      STOP_CMD: 'true',
      START_CMD: 'true',
      ...env,
    },
  })
  const steps = r.stdout
    .split('\n')
    .filter((l) => l.startsWith('STEP '))
    .map((l) => l.split(' ')[1])
  return { code: r.status, err: r.stderr, steps, log: () => readFile(log, 'utf8') }
}

describe('manual runbook script', () => {
  it('runs every planned warm round, then ships the last one to the final snapshot', async () => {
    const r = runbook('2')
    expect(r.code).toBe(0)
    expect(r.steps).toEqual([
      'create-destination',
      'snapshot-0',
      'round-0',
      'snapshot-1',
      'round-1',
      'snapshot-2',
      'round-2',
      'stop-workload',
      'snapshot-3',
      'round-3',
      'start-destination',
    ])
    expect(await r.log()).toContain('export-diff --no-progress --from-snap manual-2 rbd/src@manual-3 -')
  })

  it('with its time budget spent, starts no warm round and ships the final delta from the last snapshot it has', async () => {
    const r = runbook('9', { WARM_UNTIL: String(Math.floor(Date.now() / 1000) - 1) })
    expect(r.code).toBe(0)
    expect(r.steps).toEqual([
      'create-destination',
      'snapshot-0',
      'round-0',
      'stop-workload',
      'snapshot-1',
      'round-1',
      'start-destination',
    ])
    expect(await r.log()).toContain('export-diff --no-progress --from-snap manual-0 rbd/src@manual-1 -')
  })

  it('a budget in the future leaves the planned rounds alone', () => {
    const r = runbook('1', { WARM_UNTIL: String(Math.floor(Date.now() / 1000) + 3600) })
    expect(r.steps.filter((s) => s?.startsWith('snapshot-'))).toEqual([
      'snapshot-0',
      'snapshot-1',
      'snapshot-2',
    ])
  })

  it('refuses a malformed budget or round count before touching anything', () => {
    const bad = runbook('2', { WARM_UNTIL: 'soon' })
    expect(bad.code).toBe(2)
    expect(bad.err).toBe('bad WARM_UNTIL: soon\n')
    expect(bad.steps).toEqual([])
    const rounds = runbook('two')
    expect(rounds.code).toBe(2)
    expect(rounds.err).toBe('bad round count: two\n')
  })
})
