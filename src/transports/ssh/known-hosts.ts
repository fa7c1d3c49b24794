/**
 * OpenSSH known_hosts: which key a host must present (sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT").
 * Plain, wildcard (`*`, `?`), negated (`!pat`) and hashed (`|1|salt|hmac-sha1`) host patterns;
 * `[host]:port` for ports other than 22; `@revoked` keys are refused; `@cert-authority` lines are
 * skipped (snapferry does not verify host certificates). Pure except for readKnownHosts/appendKnownHost.
 */
import { createHmac } from 'node:crypto'
import { appendFile, mkdir, readFile } from 'node:fs/promises'
import path from 'node:path'

export interface KnownHostEntry {
  readonly line: number
  readonly marker: 'revoked' | 'cert-authority' | undefined
  readonly patterns: string
  readonly keyType: string
  readonly key: Buffer
}

export type HostKeyVerdict =
  | { readonly kind: 'match'; readonly line: number }
  | { readonly kind: 'revoked'; readonly line: number }
  | { readonly kind: 'mismatch'; readonly lines: readonly number[]; readonly knownTypes: readonly string[] }
  | { readonly kind: 'unknown' }

export function parseKnownHosts(text: string): KnownHostEntry[] {
  const out: KnownHostEntry[] = []
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim()
    if (!line || line.startsWith('#')) return
    const f = line.split(/\s+/)
    let marker: KnownHostEntry['marker']
    if (f[0]?.startsWith('@')) {
      const m = f.shift()
      if (m === '@revoked') marker = 'revoked'
      else if (m === '@cert-authority') marker = 'cert-authority'
      else return
    }
    const [patterns, keyType, b64] = f
    if (!patterns || !keyType || !b64) return
    out.push({ line: i + 1, marker, patterns, keyType, key: Buffer.from(b64, 'base64') })
  })
  return out
}

/** The name known_hosts files use for a host: `host`, or `[host]:port` when the port is not 22. */
export function knownHostName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`
}

function globMatch(pattern: string, name: string): boolean {
  const re = new RegExp(
    `^${pattern
      .split('')
      .map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
      .join('')}$`,
    'i',
  )
  return re.test(name)
}

/** Whether a known_hosts pattern list covers `name` (negations veto). */
export function patternsMatch(patterns: string, name: string): boolean {
  if (patterns.startsWith('|1|')) {
    const [, , salt, hash] = patterns.split('|')
    if (!salt || !hash) return false
    const h = createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64')
    return h === hash
  }
  let hit = false
  for (const p of patterns.split(',')) {
    if (p.startsWith('!')) {
      if (globMatch(p.slice(1), name)) return false
    } else if (globMatch(p, name)) hit = true
  }
  return hit
}

/** The key type inside an SSH public key blob (its first string). */
export function keyTypeOf(blob: Buffer): string {
  if (blob.length < 4) return 'unknown'
  const n = blob.readUInt32BE(0)
  return blob.subarray(4, 4 + n).toString('latin1')
}

/** What the file says about `key` presented by `name` (a knownHostName). */
export function verifyHostKey(entries: readonly KnownHostEntry[], name: string, key: Buffer): HostKeyVerdict {
  const mine = entries.filter((e) => e.marker !== 'cert-authority' && patternsMatch(e.patterns, name))
  const revoked = entries.find((e) => e.marker === 'revoked' && e.key.equals(key))
  if (revoked) return { kind: 'revoked', line: revoked.line }
  const good = mine.find((e) => e.marker === undefined && e.key.equals(key))
  if (good) return { kind: 'match', line: good.line }
  const others = mine.filter((e) => e.marker === undefined)
  // Like OpenSSH: a host known only under other key types is "unknown" for this type, not changed.
  const sameType = others.filter((e) => e.keyType === keyTypeOf(key))
  if (sameType.length > 0)
    return { kind: 'mismatch', lines: sameType.map((e) => e.line), knownTypes: others.map((e) => e.keyType) }
  return { kind: 'unknown' }
}

export async function readKnownHosts(file: string): Promise<KnownHostEntry[]> {
  try {
    return parseKnownHosts(await readFile(file, 'utf8'))
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw e
  }
}

export async function appendKnownHost(file: string, name: string, key: Buffer): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 })
  await appendFile(file, `${name} ${keyTypeOf(key)} ${key.toString('base64')}\n`, { mode: 0o600 })
}
