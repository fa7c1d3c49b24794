/**
 * AgentStreams and the controller's cancel: a cancel that arrives while a stream is still being set up
 * (the codec loads before the abort listener exists) must still end the request. It once did not: an
 * import then waited for a data connection that never came, and `snapferry run` hung after SIGTERM
 * (1 in 25 SIGTERMs to a holding run; the CLI test of `abort --clean-snapshots` timed out in CI).
 */
import pino from 'pino'
import { describe, expect, it } from 'vitest'
import { AgentStreams } from '../../../src/agent-protocol/agent-streams.js'
import type { VolumeDriver } from '../../../src/drivers/volume-driver.js'
import { SnapferryError } from '../../../src/errors/snapferry-error.js'

const volume = { endpoint: { driver: 'file', path: '/nonexistent' }, label: 'disk' }

/** A driver whose import reads its whole input, and whose export writes one byte and ends, as drivers do. */
function readingDriver(calls: string[]): VolumeDriver {
  return {
    async importDiff(_req: unknown, source: AsyncIterable<Uint8Array>) {
      calls.push('importDiff')
      for await (const _ of source) {
        // drain
      }
      return { extents: 0 }
    },
    async exportDiff(_req: unknown, sink: NodeJS.WritableStream) {
      calls.push('exportDiff')
      sink.end(Buffer.from([1]))
      return { extents: 0 }
    },
  } as unknown as VolumeDriver
}

/** A signal that fires while the stream is still being set up (before any listener could be added). */
function abortedDuringSetup(): AbortSignal {
  const ac = new AbortController()
  queueMicrotask(() => ac.abort(new SnapferryError('ABORTED', 'cancelled by the controller')))
  return ac.signal
}

function within<T>(p: Promise<T>, ms: number): Promise<T> {
  return Promise.race([
    p,
    new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`still waiting after ${ms} ms`)), ms)),
  ])
}

describe('AgentStreams: a cancel during set-up', () => {
  const log = pino({ level: 'silent' })

  it.each([
    ['import', 'ends with the cancel, not a wait for data'],
    ['export', 'ends with the cancel and never reads the volume'],
  ] as const)('an %s cancelled while its stream is set up %s', async (kind, _outcome) => {
    const calls: string[] = []
    const streams = new AgentStreams(log)
    const params = { stream: `token-${kind}`, volume, request: { toSnap: 'snapferry-0001-x' } }
    const p = streams[kind](readingDriver(calls), params, abortedDuringSetup())
    await expect(within(p, 2000)).rejects.toThrow('cancelled by the controller')
    expect(calls).toEqual([])
  })

  it('an import cancelled once it runs ends too (the listener path)', async () => {
    const calls: string[] = []
    const streams = new AgentStreams(log)
    const ac = new AbortController()
    const p = streams.import(
      readingDriver(calls),
      { stream: 'token-late', volume, request: { toSnap: 'snapferry-0001-x' } },
      ac.signal,
    )
    for (let i = 0; i < 100 && calls.length === 0; i++) await new Promise((r) => setTimeout(r, 5))
    expect(calls).toEqual(['importDiff'])
    ac.abort(new SnapferryError('ABORTED', 'cancelled by the controller'))
    await expect(within(p, 2000)).rejects.toThrow('cancelled by the controller')
  })
})
