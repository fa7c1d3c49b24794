/**
 * The TCP connection under an ssh2 client, with its writes batched: ssh2 writes every SSH packet (at most
 * 32 KiB of channel data with OpenSSH's sshd) to the socket on its own, one syscall each. Corked until
 * the event loop's next check phase, the packets of one loop iteration leave in a single writev. On the
 * downtime bench's base (docs/BENCHMARKS.md) the controller then used 1.7–1.8 CPU-seconds in most runs
 * for ~450 MiB of frames, against 2.1–2.5 before (runs that sent more bytes raw still took up to 2.7).
 */
import { Socket } from 'node:net'

/** A socket connecting to host:port (ssh2 waits for its 'connect'); writes within one loop iteration are coalesced. */
export function batchedTcpConnection(host: string, port: number): Socket {
  const s = new Socket()
  s.connect({ host, port })
  // After connect(): it puts the prototype's write back in place.
  corkPerTick(s)
  return s
}

/** Writes made within one event-loop iteration go out together, in one writev, at its check phase. */
export function corkPerTick(s: Socket): void {
  let corked = false
  const write = s.write.bind(s) as (...a: unknown[]) => boolean
  // An own property, assignable: net.Socket itself replaces `write` once the peer ended the connection.
  ;(s as unknown as { write: (...a: unknown[]) => boolean }).write = (...a: unknown[]) => {
    if (!corked && !s.destroyed) {
      corked = true
      s.cork()
      setImmediate(() => {
        corked = false
        s.uncork()
      })
    }
    return write(...a)
  }
}
