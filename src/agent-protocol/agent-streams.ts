/**
 * The agent's data streams: an export leaves as verified segments (SegmentSender), an import arrives as
 * segments (SegmentReceiver), each over its own data connection to the agent's socket, matched to its
 * request by a token. Either may come first: the control request or the data connection.
 */
import { randomUUID } from 'node:crypto'
import type { Socket } from 'node:net'
import type { Logger } from 'pino'
import type { VolumeDriver } from '../drivers/volume-driver.js'
import type { CompressionSetting } from '../transfer/compression-policy.js'
import { SegmentCodec } from '../transfer/segment-codec.js'
import { SegmentReceiver } from '../transfer/segment-receiver.js'
import { SegmentSender } from '../transfer/segment-sender.js'
import type { DataStreamHeader, VolumeRef } from './protocol-messages.js'

const DATA_CONNECT_TIMEOUT_MS = 30_000
/** Unacknowledged frame bytes a sending agent keeps for re-sending (covers ~150 ms at 1.6 Gbit/s). */
export const SEND_WINDOW_BYTES = 32 << 20
/**
 * A sending agent cuts a partial segment once its first byte waited this long: small extents leave the
 * source at a few MB/s, and a whole 1 MiB segment took 480–730 ms to fill in the downtime bench's warm
 * rounds over 100 Mbit, with the destination idle. Fast streams fill a segment in a few ms and never hit it.
 */
export const SEGMENT_AGE_MS = 25
/**
 * Verified delta bytes an import holds before pausing the link. An rbd apply reads nothing until its
 * checks passed and its marker is set (~0.9 s with one rbd process per check; 130–440 ms with the librbd
 * session on the downtime bench); with only a few MiB of buffer the link idles meanwhile, and inside a
 * cutover window that idle time is downtime. Bounded, so memory stays flat: at most this much per
 * volume being imported.
 */
export const RECEIVE_BUFFER_BYTES = 32 << 20

/** A stream's data connection header: the token, and for a resumed export the first frame wanted. */
export type StreamHeader = DataStreamHeader & { readonly from?: number }

type Stream = { readonly sender: SegmentSender } | { readonly receiver: SegmentReceiver }

export class AgentStreams {
  readonly #log: Logger
  readonly #streams = new Map<string, Stream>()
  readonly #arrived = new Map<string, { sock: Socket; header: StreamHeader }>()

  constructor(log: Logger) {
    this.#log = log
  }

  /** Export a delta from `d` into the segment stream `params.stream`; resolves with its result and digest. */
  async export(d: VolumeDriver, params: Record<string, unknown>, signal: AbortSignal): Promise<unknown> {
    const token = params.stream as string
    const label = (params.volume as VolumeRef).label
    const sender = new SegmentSender({
      codec: await SegmentCodec.create(),
      compression: (params.compression as CompressionSetting | undefined) ?? 0,
      windowBytes: SEND_WINDOW_BYTES,
      maxSegmentAgeMs: SEGMENT_AGE_MS,
      label,
      resumable: true,
      onLevelChange: (level) => this.#log.debug({ volume: label, level }, 'compression level'),
    })
    const abort = () => sender.fail(signal.reason as Error)
    signal.addEventListener('abort', abort, { once: true })
    try {
      // A cancel that came while the codec loaded fired before the listener existed.
      signal.throwIfAborted()
      this.#register(token, { sender })
      const request = params.request as { toSnap: string }
      const result = await d.exportDiff({ ...request, signal }, sender.input)
      const stats = await sender.done
      return { ...result, ...sender.digest(), transfer: stats }
    } catch (e) {
      sender.fail(e as Error)
      throw e
    } finally {
      signal.removeEventListener('abort', abort)
      this.#streams.delete(token)
    }
  }

  /** Import the segment stream `params.stream` into `d`; resolves with its result and digest. */
  async import(d: VolumeDriver, params: Record<string, unknown>, signal: AbortSignal): Promise<unknown> {
    const token = params.stream as string
    const label = (params.volume as VolumeRef).label
    const receiver = new SegmentReceiver({
      codec: await SegmentCodec.create(),
      label,
      resumable: true,
      bufferBytes: RECEIVE_BUFFER_BYTES,
      onCorrupt: (e) => this.#log.warn({ volume: label, err: e.message }, 'damaged segment refused'),
    })
    const abort = () => receiver.output.destroy(signal.reason as Error)
    signal.addEventListener('abort', abort, { once: true })
    try {
      // As for an export: without this, the import would wait for a data connection that never comes.
      signal.throwIfAborted()
      this.#register(token, { receiver })
      const request = params.request as { toSnap: string }
      const result = await d.importDiff({ ...request, signal }, receiver.output)
      return { ...result, ...receiver.digest(), transfer: receiver.stats }
    } finally {
      signal.removeEventListener('abort', abort)
      this.#streams.delete(token)
      receiver.output.destroy()
    }
  }

  /** A data connection for a stream: handed over now, or held until its request arrives. */
  connect(sock: Socket, header: StreamHeader): void {
    const st = this.#streams.get(header.token)
    if (st) {
      this.#connect(st, sock, header)
      return
    }
    // The request that owns this stream has not arrived yet (control and data race).
    this.#arrived.get(header.token)?.sock.destroy()
    this.#arrived.set(header.token, { sock, header })
    setTimeout(() => {
      if (this.#arrived.get(header.token)?.sock === sock) {
        this.#arrived.delete(header.token)
        sock.destroy()
      }
    }, DATA_CONNECT_TIMEOUT_MS).unref()
  }

  /** A stream is ready for connections; one that arrived first is handed over now. */
  #register(token: string, st: Stream): void {
    this.#streams.set(token, st)
    const early = this.#arrived.get(token)
    if (early) {
      this.#arrived.delete(token)
      this.#connect(st, early.sock, early.header)
    }
  }

  #connect(st: Stream, sock: Socket, h: StreamHeader): void {
    if ('sender' in st) st.sender.attach(sock, typeof h.from === 'number' ? h.from : 0)
    else st.receiver.attach(sock)
  }
}

export function newStreamToken(): string {
  return randomUUID()
}
