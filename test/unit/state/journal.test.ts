import { appendFile, mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { Journal, readJournal } from '../../../src/state/journal.js'

let dir = ''
afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true })
})

describe('journal', () => {
  it('appends numbered, timestamped entries in call order', async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'sf-j-'))
    const j = await Journal.open(dir)
    await Promise.all([
      j.append({ type: 'phase', phase: 'base' }),
      j.append({ type: 'phase', phase: 'converging' }),
    ])
    await j.close()
    const entries = await readJournal(dir)
    expect(entries.map((e) => [e.seq, e.type === 'phase' && e.phase])).toEqual([
      [1, 'base'],
      [2, 'converging'],
    ])
  })

  it('a line torn by a crash is ignored, and the next run continues numbering on a fresh line', async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'sf-j-'))
    const j = await Journal.open(dir)
    await j.append({ type: 'phase', phase: 'base' })
    await j.close()
    await appendFile(path.join(dir, 'journal.jsonl'), '{"seq":2,"at":"2026-11-21T00:00:00Z","type":"pha')
    expect((await readJournal(dir)).map((e) => e.seq)).toEqual([1])
    const again = await Journal.open(dir)
    await again.append({ type: 'phase', phase: 'converging' })
    await again.close()
    expect((await readJournal(dir)).map((e) => e.seq)).toEqual([1, 2])
    expect((await readFile(path.join(dir, 'journal.jsonl'), 'utf8')).split('\n')).toHaveLength(4)
  })

  it('damage that is not a torn entry is reported, not skipped', async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'sf-j-'))
    const j = await Journal.open(dir)
    await j.append({ type: 'phase', phase: 'base' })
    await j.close()
    await appendFile(
      path.join(dir, 'journal.jsonl'),
      'edited by hand\n{"seq":3,"at":"x","type":"phase","phase":"done"}\n',
    )
    await expect(readJournal(dir)).rejects.toMatchObject({
      code: 'JOURNAL_CORRUPT',
      message: `${path.join(dir, 'journal.jsonl')}:2 is not a journal entry`,
    })
  })
})
