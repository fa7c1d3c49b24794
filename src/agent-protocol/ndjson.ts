/** Newline-delimited JSON over a byte stream, with a line-length cap so a bad peer cannot exhaust memory. */
import type { Readable, Writable } from 'node:stream'
import { SnapferryError } from '../errors/snapferry-error.js'

export const MAX_LINE_BYTES = 16 << 20

/** Calls onMessage for each JSON line; onEnd when the stream ends or fails. */
export function readJsonLines(
  stream: Readable,
  onMessage: (msg: unknown) => void,
  onEnd: (err?: Error) => void,
): void {
  let pending: Buffer[] = []
  let pendingBytes = 0
  let ended = false
  const end = (err?: Error) => {
    if (ended) return
    ended = true
    onEnd(err)
  }
  stream.on('data', (chunk: Buffer) => {
    let start = 0
    for (let nl = chunk.indexOf(10, start); nl !== -1; nl = chunk.indexOf(10, start)) {
      pending.push(chunk.subarray(start, nl))
      const line = Buffer.concat(pending).toString('utf8')
      pending = []
      pendingBytes = 0
      start = nl + 1
      if (line.trim() === '') continue
      let msg: unknown
      try {
        msg = JSON.parse(line)
      } catch {
        end(
          new SnapferryError(
            'AGENT_PROTOCOL',
            `peer sent a line that is not JSON: ${JSON.stringify(line.slice(0, 120))}`,
          ),
        )
        stream.destroy()
        return
      }
      onMessage(msg)
    }
    if (start < chunk.length) {
      pending.push(chunk.subarray(start))
      pendingBytes += chunk.length - start
      if (pendingBytes > MAX_LINE_BYTES) {
        end(new SnapferryError('AGENT_PROTOCOL', `peer sent a control line over ${MAX_LINE_BYTES} bytes`))
        stream.destroy()
      }
    }
  })
  stream.on('end', () => end())
  stream.on('close', () => end())
  stream.on('error', (e) => end(e))
  // A stream paused explicitly (readHeaderLine does) does not flow for a new 'data' listener alone.
  stream.resume()
}

export function writeJsonLine(stream: Writable, msg: unknown): void {
  stream.write(`${JSON.stringify(msg)}\n`)
}

/** Read one JSON line from the start of a stream; returns it and leaves the rest of the bytes unshifted. */
export function readHeaderLine(stream: Readable, maxBytes = 4096): Promise<unknown> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0)
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk])
      const nl = buf.indexOf(10)
      if (nl === -1) {
        if (buf.length > maxBytes) fail(new SnapferryError('AGENT_PROTOCOL', 'data stream header too long'))
        return
      }
      cleanup()
      stream.pause()
      const rest = buf.subarray(nl + 1)
      if (rest.length > 0) stream.unshift(rest)
      try {
        resolve(JSON.parse(buf.subarray(0, nl).toString('utf8')))
      } catch {
        reject(new SnapferryError('AGENT_PROTOCOL', 'data stream header is not JSON'))
      }
    }
    const onEnd = () => fail(new SnapferryError('AGENT_PROTOCOL', 'data stream closed before its header'))
    const fail = (e: Error) => {
      cleanup()
      reject(e)
    }
    const cleanup = () => {
      stream.off('data', onData)
      stream.off('end', onEnd)
      stream.off('error', fail)
    }
    stream.on('data', onData)
    stream.on('end', onEnd)
    stream.on('error', fail)
  })
}
