import { describe, expect, it } from 'vitest'
import { type RunbookStep, runRunbook } from '../../../src/cutover/runbook.js'
import { SnapferryError } from '../../../src/errors/snapferry-error.js'

function step(name: string, phase: RunbookStep['phase'], log: string[], fail = false): RunbookStep {
  return {
    name,
    kind: phase === 'transfer' ? 'final-round' : phase === 'verify' ? 'verify' : 'hook',
    phase,
    async run() {
      log.push(name)
      if (fail) throw new SnapferryError('HOOK_FAILED', `${name} failed`)
      return { output: `${name} ran` }
    },
  }
}

describe('cutover runbook', () => {
  it('runs every step in order and reports each', async () => {
    const log: string[] = []
    const r = await runRunbook(
      [
        step('stop', 'before', log),
        step('final', 'transfer', log),
        step('verify', 'verify', log),
        step('start', 'after', log),
      ],
      [step('restart', 'before', log)],
      undefined,
    )
    expect(r.status).toBe('ok')
    expect(log).toEqual(['stop', 'final', 'verify', 'start'])
    expect(r.steps.map((s) => s.status)).toEqual(['ok', 'ok', 'ok', 'ok'])
    expect(r.rollback).toEqual([])
    expect(r.downtimeMs).toBeGreaterThanOrEqual(0)
  })

  it('a failing before hook: later steps do not run, rollback runs', async () => {
    const log: string[] = []
    const r = await runRunbook(
      [step('stop', 'before', log, true), step('final', 'transfer', log), step('start', 'after', log)],
      [step('restart', 'before', log)],
      undefined,
    )
    expect(r.status).toBe('rolled-back')
    expect(r.failedStep).toBe('stop')
    expect(log).toEqual(['stop', 'restart'])
    expect(r.steps.map((s) => [s.name, s.status])).toEqual([
      ['stop', 'failed'],
      ['final', 'not-run'],
      ['start', 'not-run'],
    ])
    expect(r.steps[0]?.error?.code).toBe('HOOK_FAILED')
    expect(r.rollback.map((s) => [s.name, s.status, s.phase])).toEqual([['restart', 'ok', 'rollback']])
  })

  it('a failed verification rolls back too', async () => {
    const log: string[] = []
    const r = await runRunbook(
      [
        step('stop', 'before', log),
        step('final', 'transfer', log),
        step('verify', 'verify', log, true),
        step('start', 'after', log),
      ],
      [step('restart', 'before', log)],
      undefined,
    )
    expect(r.status).toBe('rolled-back')
    expect(log).toEqual(['stop', 'final', 'verify', 'restart'])
  })

  it('a failure while promoting does not roll back (the workload might run twice)', async () => {
    const log: string[] = []
    const r = await runRunbook(
      [
        step('stop', 'before', log),
        step('final', 'transfer', log),
        step('attach', 'after', log, true),
        step('start', 'after', log),
      ],
      [step('restart', 'before', log)],
      undefined,
    )
    expect(r.status).toBe('failed')
    expect(r.failedStep).toBe('attach')
    expect(log).toEqual(['stop', 'final', 'attach'])
    expect(r.rollback).toEqual([])
  })

  /** A typed step: does something and returns how to put it back. */
  function undoable(name: string, phase: RunbookStep['phase'], log: string[], fail = false): RunbookStep {
    return {
      name,
      kind: 'openstack',
      phase,
      async run() {
        log.push(name)
        if (fail) throw new SnapferryError('OPENSTACK_API_ERROR', `${name} failed`)
        return { output: `${name} ran`, undo: step(`undo:${name}`, phase, log) }
      },
    }
  }

  it('undoes completed typed steps in reverse order, then runs the rollback hooks', async () => {
    const log: string[] = []
    const r = await runRunbook(
      [
        undoable('stop', 'before', log),
        undoable('detach', 'before', log),
        step('final', 'transfer', log),
        step('verify', 'verify', log, true),
        step('start', 'after', log),
      ],
      [step('notify', 'before', log)],
      undefined,
    )
    expect(r.status).toBe('rolled-back')
    expect(log).toEqual(['stop', 'detach', 'final', 'verify', 'undo:detach', 'undo:stop', 'notify'])
    expect(r.rollback.map((s) => [s.name, s.kind, s.status])).toEqual([
      ['undo:detach', 'undo', 'ok'],
      ['undo:stop', 'undo', 'ok'],
      ['notify', 'rollback-hook', 'ok'],
    ])
  })

  it('a promotion made only of undoable steps rolls back when a later one fails', async () => {
    const log: string[] = []
    const r = await runRunbook(
      [
        undoable('stop', 'before', log),
        undoable('create-server', 'after', log),
        undoable('set-metadata', 'after', log, true),
      ],
      [],
      undefined,
    )
    expect(r.status).toBe('rolled-back')
    expect(log).toEqual(['stop', 'create-server', 'set-metadata', 'undo:create-server', 'undo:stop'])
  })

  it('a promotion that ran a shell hook is not rolled back, even with typed steps around it', async () => {
    const log: string[] = []
    const r = await runRunbook(
      [
        undoable('stop', 'before', log),
        step('start-app', 'after', log),
        undoable('create-server', 'after', log, true),
      ],
      [step('restart', 'before', log)],
      undefined,
    )
    expect(r.status).toBe('failed')
    expect(log).toEqual(['stop', 'start-app', 'create-server'])
    expect(r.rollback).toEqual([])
  })
})
