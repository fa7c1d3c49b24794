/**
 * The append-only journal of a pipeline (`<stateDir>/journal.jsonl`). Each entry is synced to disk
 * before append() resolves, so after a crash the journal tells what was about to happen and what
 * happened. A torn last line (crash mid-write) is ignored; damage anywhere else is an error.
 */
import { type FileHandle, mkdir, open, readFile } from 'node:fs/promises'
import path from 'node:path'
import { SnapferryError } from '../errors/snapferry-error.js'
import type { JournalEntry, JournalEvent } from './journal-entries.js'

export const JOURNAL_FILE = 'journal.jsonl'

/**
 * Testing knob: SIGKILL this process right after journal entry number N is on disk, to prove that a
 * run resumes correctly from a kill at every journaled step (test/integration/resume-after-kill.test.ts).
 */
const CRASH_AT_SEQ = Number(process.env.SNAPFERRY_CRASH_AT_JOURNAL_SEQ ?? 0)

export class Journal {
  readonly file: string
  readonly #fh: FileHandle
  #seq: number
  #tail: Promise<void> = Promise.resolve()

  private constructor(file: string, fh: FileHandle, seq: number) {
    this.file = file
    this.#fh = fh
    this.#seq = seq
  }

  static async open(stateDir: string): Promise<Journal> {
    await mkdir(stateDir, { recursive: true })
    const file = path.join(stateDir, JOURNAL_FILE)
    const existing = await readJournal(stateDir)
    const fh = await open(file, 'a')
    // A torn line left by a crash would glue onto the next entry: start on a fresh line.
    const st = await fh.stat()
    if (st.size > 0) {
      const raw = await readFile(file)
      if (raw[raw.length - 1] !== 0x0a) await fh.write('\n')
    }
    return new Journal(file, fh, existing.at(-1)?.seq ?? 0)
  }

  /** Append and sync; entries are written in call order. */
  append(event: JournalEvent): Promise<JournalEntry> {
    const entry = { seq: ++this.#seq, at: new Date().toISOString(), ...event } as JournalEntry
    const line = `${JSON.stringify(entry)}\n`
    const p = this.#tail.then(async () => {
      await this.#fh.write(line)
      await this.#fh.datasync()
      if (entry.seq === CRASH_AT_SEQ) process.kill(process.pid, 'SIGKILL')
    })
    this.#tail = p.catch(() => {})
    return p.then(() => entry)
  }

  async close(): Promise<void> {
    await this.#tail
    await this.#fh.close()
  }
}

export async function readJournal(stateDir: string): Promise<JournalEntry[]> {
  const file = path.join(stateDir, JOURNAL_FILE)
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw e
  }
  const lines = text.split('\n')
  const out: JournalEntry[] = []
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string
    if (line.trim() === '') continue
    try {
      out.push(JSON.parse(line) as JournalEntry)
    } catch (e) {
      const isLast = lines.slice(i + 1).every((l) => l.trim() === '')
      if (isLast) break // torn by a crash mid-write: the side effect it announced is re-checked against the drivers
      // A torn line followed by later entries: a crash left it, the next run started a fresh line.
      if (!line.startsWith('{"seq":')) {
        throw new SnapferryError('JOURNAL_CORRUPT', `${file}:${i + 1} is not a journal entry`, {
          cause: e,
          hint: 'the journal was edited or damaged; move it away to start over (snapshots on both sides are reconciled on the next run)',
        })
      }
    }
  }
  return out
}
