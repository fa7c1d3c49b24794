/** snapferry's version, read once from package.json (the agent handshake compares it). */
import { readFileSync } from 'node:fs'

function findVersion(): string {
  for (const rel of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as {
        name?: string
        version?: string
      }
      if (pkg.name === 'snapferry' && pkg.version) return pkg.version
    } catch {}
  }
  return '0.0.0-unknown'
}

export const VERSION = findVersion()
