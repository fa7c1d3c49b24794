/** Secrets never leave snapferry's memory: request/response bodies are recorded with these keys masked. */

const SECRET_KEY = /pass(word)?|secret|token|adminpass|^key$|private|credential_secret/i

export const REDACTED = '***'

export function redact(value: unknown, depth = 0): unknown {
  if (depth > 12 || value === null || typeof value !== 'object') return value
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1))
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(value as Record<string, unknown>))
    out[k] = SECRET_KEY.test(k) && v !== null && typeof v !== 'object' ? REDACTED : redact(v, depth + 1)
  return out
}
