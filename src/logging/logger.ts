/** Structured logs (pino) go to a file; the terminal gets the human report (see src/cli/report/). */
import { mkdirSync } from 'node:fs'
import path from 'node:path'
import pino, { type Logger } from 'pino'

/** Keys whose values never reach a log: passwords, tokens, keys. */
export const REDACT_PATHS = [
  '*.password',
  '*.secret',
  '*.token',
  '*.key',
  '*.privateKey',
  '*.passphrase',
  'env.*',
]

export function fileLogger(file: string, level = 'debug'): Logger {
  mkdirSync(path.dirname(file), { recursive: true })
  return pino(
    { level, redact: { paths: REDACT_PATHS, censor: '[redacted]' } },
    pino.destination({ dest: file, mkdir: true, sync: false }),
  )
}

export function silentLogger(): Logger {
  return pino({ level: 'silent' })
}

export type { Logger }
