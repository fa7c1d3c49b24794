/** Errors for corrupt or unexpected diff input: they always name the byte offset. */
import type { ErrorCode } from '../errors/error-codes.js'
import { SnapferryError } from '../errors/snapferry-error.js'

export function diffError(
  code: ErrorCode,
  message: string,
  offset: number,
  extra?: Record<string, unknown>,
): SnapferryError {
  return new SnapferryError(code, `${message} (at byte ${offset} of the diff stream)`, {
    hint: 'the delta stream is corrupt or not an rbd diff; re-run the round to produce a fresh one',
    details: { offset, ...extra },
  })
}

/** A printable rendering of unexpected bytes for messages. */
export function showBytes(b: Buffer): string {
  return JSON.stringify(b.toString('latin1')).slice(0, 60)
}
