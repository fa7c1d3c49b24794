/** SnapferryError: every failure snapferry reports carries a stable code, the cause and a fix. */
import type { ErrorCode } from './error-codes.js'

export interface SnapferryErrorOptions {
  /** What the operator should do about it. */
  readonly hint?: string
  readonly cause?: unknown
  /** Structured facts (volume, snapshot, host, byte offset …) for logs and --json output. */
  readonly details?: Readonly<Record<string, unknown>>
  /** Transient failures may be retried with backoff; permanent ones stop the run. Default: permanent. */
  readonly transient?: boolean
}

export class SnapferryError extends Error {
  override readonly name = 'SnapferryError'
  readonly code: ErrorCode
  readonly hint: string | undefined
  readonly details: Readonly<Record<string, unknown>>
  readonly transient: boolean

  constructor(code: ErrorCode, message: string, options: SnapferryErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.code = code
    this.hint = options.hint
    this.details = Object.freeze({ ...options.details })
    this.transient = options.transient ?? false
  }

  /** A plain object that survives JSON (agent protocol, journal, --json output). */
  toJSON(): SerializedError {
    return {
      code: this.code,
      message: this.message,
      ...(this.hint === undefined ? {} : { hint: this.hint }),
      details: this.details,
      transient: this.transient,
    }
  }

  static fromJSON(e: SerializedError): SnapferryError {
    return new SnapferryError(e.code, e.message, {
      ...(e.hint === undefined ? {} : { hint: e.hint }),
      details: e.details,
      transient: e.transient,
    })
  }
}

export interface SerializedError {
  readonly code: ErrorCode
  readonly message: string
  readonly hint?: string
  readonly details: Readonly<Record<string, unknown>>
  readonly transient: boolean
}

export function isSnapferryError(e: unknown, code?: ErrorCode): e is SnapferryError {
  return e instanceof SnapferryError && (code === undefined || e.code === code)
}

/** Wrap anything thrown into a SnapferryError, keeping an existing one as it is. */
export function asSnapferryError(e: unknown, code: ErrorCode = 'INTERNAL', context?: string): SnapferryError {
  if (e instanceof SnapferryError) return e
  const msg = e instanceof Error ? e.message : String(e)
  return new SnapferryError(code, context ? `${context}: ${msg}` : msg, { cause: e })
}

/** One line for a terminal: "error CODE: message\n  hint: …". */
export function formatError(e: unknown): string {
  const err = asSnapferryError(e)
  const lines = [`error ${err.code}: ${err.message}`]
  if (err.hint) lines.push(`  hint: ${err.hint}`)
  return lines.join('\n')
}
