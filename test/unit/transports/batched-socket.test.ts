import { once } from 'node:events'
import { createServer, type Socket } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { batchedTcpConnection } from '../../../src/transports/ssh/batched-socket.js'

describe('batched TCP connection (under ssh2)', () => {
  const closers: (() => void)[] = []
  afterEach(() => {
    for (const c of closers.splice(0)) c()
  })

  async function server(): Promise<{ port: number; received: () => Promise<Buffer> }> {
    const srv = createServer()
    srv.listen(0, '127.0.0.1')
    await once(srv, 'listening')
    closers.push(() => srv.close())
    const conn = once(srv, 'connection') as Promise<[Socket]>
    return {
      port: (srv.address() as { port: number }).port,
      received: async () => {
        const [s] = await conn
        const parts: Buffer[] = []
        s.on('data', (b: Buffer) => parts.push(b))
        await once(s, 'end')
        return Buffer.concat(parts)
      },
    }
  }

  it('sends every write of one loop iteration in one batch, in order, and keeps backpressure', async () => {
    const srv = await server()
    const s = batchedTcpConnection('127.0.0.1', srv.port)
    closers.push(() => s.destroy())
    const got = srv.received()
    await once(s, 'connect')
    let writevCalls = 0
    let writeCalls = 0
    const proto = s as unknown as { _writev: (...a: unknown[]) => void; _write: (...a: unknown[]) => void }
    const writev = proto._writev.bind(s)
    const write = proto._write.bind(s)
    proto._writev = (...a) => {
      writevCalls++
      writev(...a)
    }
    proto._write = (...a) => {
      writeCalls++
      write(...a)
    }
    const packets = Array.from({ length: 50 }, (_, i) => Buffer.alloc(32 << 10, i))
    const said = packets.map((p) => s.write(p))
    // Past the high-water mark, write() says so, and 'drain' still comes.
    expect(said.at(-1)).toBe(false)
    await once(s, 'drain')
    expect(writevCalls).toBe(1)
    expect(writeCalls).toBe(0)
    // A write in a later iteration is a batch of its own.
    s.write(Buffer.from('tail'))
    s.end()
    const all = await got
    expect(all.equals(Buffer.concat([...packets, Buffer.from('tail')]))).toBe(true)
  })

  it('reports a refused connection as an error event, as a plain socket does', async () => {
    const srv = createServer()
    srv.listen(0, '127.0.0.1')
    await once(srv, 'listening')
    const port = (srv.address() as { port: number }).port
    srv.close()
    await once(srv, 'close')
    const s = batchedTcpConnection('127.0.0.1', port)
    const [err] = (await once(s, 'error')) as [NodeJS.ErrnoException]
    expect(err.code).toBe('ECONNREFUSED')
  })
})
