/**
 * A VolumeDriver whose volume lives behind an agent: replication logic cannot tell it from a local
 * driver. Data methods open a data channel; the agent's digest of the bytes is returned alongside.
 */
import type { Duplex, Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type {
  ChecksumResult,
  DriverCapabilities,
  ExportRequest,
  ExportResult,
  Extent,
  HeadState,
  ImportRequest,
  ImportResult,
  RecordDigest,
  SnapshotInfo,
  VolumeDriver,
  VolumeInfo,
} from '../drivers/volume-driver.js'
import type { CompressionSetting } from '../transfer/compression-policy.js'
import { SegmentCodec } from '../transfer/segment-codec.js'
import { type ReceiverStats, SegmentReceiver } from '../transfer/segment-receiver.js'
import { SegmentSender, type SenderStats } from '../transfer/segment-sender.js'
import type { AgentClient } from './agent-client.js'
import { newStreamToken } from './agent-streams.js'
import type { StreamDigest, VolumeRef } from './protocol-messages.js'

export class RemoteVolumeDriver implements VolumeDriver {
  readonly capabilities: DriverCapabilities
  readonly #client: AgentClient
  readonly #ref: VolumeRef

  private constructor(client: AgentClient, ref: VolumeRef, caps: DriverCapabilities) {
    this.#client = client
    this.#ref = ref
    this.capabilities = caps
  }

  static async open(client: AgentClient, ref: VolumeRef, signal?: AbortSignal): Promise<RemoteVolumeDriver> {
    const r = await client.call<{ capabilities: DriverCapabilities }>('describe', { volume: ref }, signal)
    return new RemoteVolumeDriver(client, ref, Object.freeze(r.capabilities))
  }

  get host(): string {
    return this.#client.host
  }

  #call<T>(
    method: Parameters<AgentClient['call']>[0],
    params: Record<string, unknown> = {},
    signal?: AbortSignal,
  ): Promise<T> {
    return this.#client.call<T>(method, { volume: this.#ref, ...params }, signal)
  }

  async describe(signal?: AbortSignal): Promise<VolumeInfo> {
    return (await this.#call<{ info: VolumeInfo }>('describe', {}, signal)).info
  }
  listSnapshots(signal?: AbortSignal): Promise<SnapshotInfo[]> {
    return this.#call('listSnapshots', {}, signal)
  }
  createSnapshot(name: string, signal?: AbortSignal): Promise<void> {
    return this.#call('createSnapshot', { name }, signal)
  }
  deleteSnapshot(name: string, signal?: AbortSignal): Promise<void> {
    return this.#call('deleteSnapshot', { name }, signal)
  }
  checkHead(snapshot: string, signal?: AbortSignal): Promise<HeadState> {
    return this.#call('checkHead', { snapshot }, signal)
  }
  headChangesSince(snapshot: string, signal?: AbortSignal): Promise<Extent[]> {
    return this.#call('headChangesSince', { snapshot }, signal)
  }
  checksum(at: 'head' | { readonly snapshot: string }, signal?: AbortSignal): Promise<ChecksumResult> {
    return this.#call('checksum', { at }, signal)
  }

  /** The record digest, or undefined when the agent's driver keeps no records. */
  async recordDigestIfAny(snapshot: string, signal?: AbortSignal): Promise<RecordDigest | undefined> {
    return (await this.#call<RecordDigest | null>('recordDigest', { snapshot }, signal)) ?? undefined
  }

  /** The agent's estimate, or undefined when its driver has none (file: it would take a full scan). */
  async estimate(fromSnap: string | undefined, signal?: AbortSignal): Promise<number | undefined> {
    return (await this.#call<number | null>('estimateDiff', { fromSnap }, signal)) ?? undefined
  }

  async exportDiff(req: ExportRequest, sink: Writable): Promise<ExportResult & StreamDigest> {
    const { signal, ...request } = req
    const stream = newStreamToken()
    const result = this.startExport(request, stream, 0, signal)
    const receiver = new SegmentReceiver({
      codec: await SegmentCodec.create(),
      label: this.#ref.label,
      resumable: false,
    })
    const ch = await this.openStream({ token: stream, from: 0 })
    receiver.attach(ch)
    const moving = pipeline(receiver.output, sink)
    const [r, m] = await Promise.allSettled([result, moving])
    if (r.status === 'rejected') {
      ch.destroy()
      throw r.reason
    }
    if (m.status === 'rejected') throw m.reason
    return r.value
  }

  async importDiff(
    req: ImportRequest,
    source: Readable | AsyncIterable<Uint8Array>,
  ): Promise<ImportResult & StreamDigest> {
    const { signal, ...request } = req
    const stream = newStreamToken()
    const result = this.startImport(request, stream, signal)
    const sender = new SegmentSender({
      codec: await SegmentCodec.create(),
      compression: 0,
      windowBytes: 8 << 20,
      label: this.#ref.label,
      resumable: false,
    })
    const moving = pipeline(source, sender.input)
    moving.catch(() => {})
    const ch = await this.openStream({ token: stream })
    sender.attach(ch, 0)
    try {
      return await result
    } finally {
      sender.fail(new Error('import finished'))
      ch.destroy()
    }
  }

  /** Ask the agent to export into stream `stream` (framed, compressed at `compression`). */
  startExport(
    request: Omit<ExportRequest, 'signal'>,
    stream: string,
    compression: CompressionSetting,
    signal?: AbortSignal,
  ): Promise<ExportResult & StreamDigest & { transfer?: SenderStats }> {
    const r = this.#call<ExportResult & StreamDigest & { transfer?: SenderStats }>(
      'exportDiff',
      { request, stream, compression },
      signal,
    )
    r.catch(() => {})
    return r
  }

  /** Ask the agent to import what arrives on stream `stream`. */
  startImport(
    request: Omit<ImportRequest, 'signal'>,
    stream: string,
    signal?: AbortSignal,
  ): Promise<ImportResult & StreamDigest & { transfer?: ReceiverStats }> {
    const r = this.#call<ImportResult & StreamDigest & { transfer?: ReceiverStats }>(
      'importDiff',
      { request, stream },
      signal,
    )
    r.catch(() => {})
    return r
  }

  /** A new connection to one of the agent's streams (header: `{token, from?}`). */
  openStream(header: { token: string; from?: number }): Promise<Duplex> {
    return this.#client.openData(header)
  }

  /** Resolves once the agent is reachable again after a dropped link. */
  whenConnected(): Promise<void> {
    return this.#client.whenConnected()
  }
}
