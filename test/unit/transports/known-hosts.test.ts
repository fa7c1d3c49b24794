import { createHmac } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import {
  knownHostName,
  parseKnownHosts,
  patternsMatch,
  verifyHostKey,
} from '../../../src/transports/ssh/known-hosts.js'

/** A fake key blob of the given type (string type + some bytes), as ssh2 hands it to the verifier. */
function blob(type: string, fill: number): Buffer {
  const t = Buffer.from(type)
  const b = Buffer.alloc(4 + t.length + 32, fill)
  b.writeUInt32BE(t.length, 0)
  t.copy(b, 4)
  return b
}
const A = blob('ssh-ed25519', 1)
const B = blob('ssh-ed25519', 2)
const R = blob('ssh-rsa', 3)
const hashed = (name: string) => {
  const salt = Buffer.alloc(20, 9)
  return `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}`
}

describe('known_hosts', () => {
  const file = [
    '# comment',
    `region-a,10.0.0.1 ssh-ed25519 ${A.toString('base64')}`,
    `[region-b]:2222 ssh-ed25519 ${B.toString('base64')}`,
    `${hashed('secret-host')} ssh-ed25519 ${A.toString('base64')}`,
    `*.example.org,!bad.example.org ssh-ed25519 ${A.toString('base64')}`,
    `@revoked * ssh-ed25519 ${blob('ssh-ed25519', 7).toString('base64')}`,
    `@cert-authority * ssh-ed25519 ${B.toString('base64')}`,
    `rsa-only ssh-rsa ${R.toString('base64')}`,
  ].join('\n')
  const entries = parseKnownHosts(file)

  it('matches plain, port-qualified, hashed and wildcard names', () => {
    expect(verifyHostKey(entries, 'region-a', A)).toEqual({ kind: 'match', line: 2 })
    expect(verifyHostKey(entries, '10.0.0.1', A)).toEqual({ kind: 'match', line: 2 })
    expect(verifyHostKey(entries, knownHostName('region-b', 2222), B)).toEqual({ kind: 'match', line: 3 })
    expect(verifyHostKey(entries, 'secret-host', A)).toEqual({ kind: 'match', line: 4 })
    expect(verifyHostKey(entries, 'x.example.org', A)).toEqual({ kind: 'match', line: 5 })
  })

  it('a changed key is a mismatch naming the lines; a new host is unknown', () => {
    expect(verifyHostKey(entries, 'region-a', B)).toEqual({
      kind: 'mismatch',
      lines: [2],
      knownTypes: ['ssh-ed25519'],
    })
    expect(verifyHostKey(entries, 'region-b', B)).toEqual({ kind: 'unknown' })
    expect(verifyHostKey(entries, 'bad.example.org', A)).toEqual({ kind: 'unknown' })
    // Known only with another key type: unknown for this type, as OpenSSH treats it.
    expect(verifyHostKey(entries, 'rsa-only', A)).toEqual({ kind: 'unknown' })
  })

  it('revoked keys are refused everywhere; cert-authority lines do not vouch for keys', () => {
    expect(verifyHostKey(entries, 'region-a', blob('ssh-ed25519', 7))).toEqual({ kind: 'revoked', line: 6 })
    expect(verifyHostKey(entries, 'anything', B)).toEqual({ kind: 'unknown' })
  })

  it('port 22 is written bare', () => {
    expect(knownHostName('h', 22)).toBe('h')
    expect(knownHostName('h', 2200)).toBe('[h]:2200')
    expect(patternsMatch('H', 'h')).toBe(true)
  })
})
