#!/usr/bin/env node
/** snapferry-agent: runs next to a volume and serves the controller on stdin/stdout (protocol v1). */
import pino from 'pino'
import { AgentServer } from '../src/agent-protocol/agent-server.js'

const log = pino(
  { name: 'snapferry-agent', level: process.env.SNAPFERRY_AGENT_LOG_LEVEL ?? 'info' },
  pino.destination(2),
)
// stdout carries the protocol: nothing else may write there.
console.log = (...args: unknown[]) => log.info({ args }, 'console.log')
process.on('SIGPIPE', () => {})

const server = new AgentServer({ input: process.stdin, output: process.stdout, log })
server
  .serve()
  .then(() => process.exit(0))
  .catch((e: unknown) => {
    log.fatal({ err: e }, 'agent failed')
    process.exit(1)
  })
