#!/usr/bin/env node
/**
 * snapferry-agent: runs next to a volume and serves the controller on stdin/stdout (protocol 2).
 *   snapferry-agent [--linger DURATION]   serve; after a lost link wait DURATION for a re-attach
 *   snapferry-agent --version             print the version and exit
 */
import pino from 'pino'
import { AgentServer } from '../src/agent-protocol/agent-server.js'
import { parseDuration } from '../src/config/units.js'
import { VERSION } from '../src/version.js'

const args = process.argv.slice(2)
if (args.includes('--version')) {
  process.stdout.write(`${VERSION}\n`)
  process.exit(0)
}
const li = args.indexOf('--linger')
const lingerMs = li >= 0 ? parseDuration(args[li + 1] ?? '') : 0

const log = pino(
  { name: 'snapferry-agent', level: process.env.SNAPFERRY_AGENT_LOG_LEVEL ?? 'info' },
  pino.destination(2),
)
// stdout carries the protocol: nothing else may write there.
console.log = (...a: unknown[]) => log.info({ args: a }, 'console.log')
process.on('SIGPIPE', () => {})
process.stdout.on('error', () => {})
process.stdin.on('error', () => {})

const server = new AgentServer({ input: process.stdin, output: process.stdout, log, lingerMs })
server
  .serve()
  .then(() => process.exit(0))
  .catch((e: unknown) => {
    log.fatal({ err: e }, 'agent failed')
    process.exit(1)
  })
