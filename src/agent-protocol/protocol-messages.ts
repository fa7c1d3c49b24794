/**
 * The agent protocol, version 1 (docs/AGENT-PROTOCOL.md). Control: one JSON object per line on the
 * agent's stdin/stdout. Bulk data: separate connections to the agent's data socket, each opened with
 * one JSON line naming the request's stream token, then raw rbd diff bytes.
 */
import type { EndpointConfig } from '../config/pipeline-config.js'
import type { SerializedError } from '../errors/snapferry-error.js'

export const PROTOCOL_VERSION = 2

export interface HelloMessage {
  readonly type: 'hello'
  readonly protocol: number
  readonly version: string
  readonly pid: number
  readonly hostname: string
  /** Unix socket for data connections (and for re-attaching the control stream). */
  readonly dataSocket: string
  /** Secret naming this agent's session: a re-attach must present it. */
  readonly session: string
}

export interface RequestMessage {
  readonly type: 'request'
  readonly id: number
  readonly method: AgentMethod
  readonly params: Record<string, unknown>
}

export interface CancelMessage {
  readonly type: 'cancel'
  readonly id: number
}

/** Keeps a lingering agent's watchdog fed; carries nothing. */
export interface PingMessage {
  readonly type: 'ping'
}

/** The controller is done: the agent exits when the control stream ends (no lingering). */
export interface ByeMessage {
  readonly type: 'bye'
}

export interface ResponseMessage {
  readonly type: 'response'
  readonly id: number
  readonly result?: unknown
  readonly error?: SerializedError
}

export type ControllerMessage = RequestMessage | CancelMessage | PingMessage | ByeMessage
export type AgentMessage = HelloMessage | ResponseMessage

export const AGENT_METHODS = [
  'describe',
  'listSnapshots',
  'createSnapshot',
  'deleteSnapshot',
  'exportDiff',
  'importDiff',
  'checkHead',
  'headChangesSince',
  'checksum',
  'estimateDiff',
  'recordDigest',
] as const
export type AgentMethod = (typeof AGENT_METHODS)[number]

/** Every request names the volume it acts on; the agent keeps one driver per volume. */
export interface VolumeRef {
  readonly endpoint: EndpointConfig
  readonly label: string
}

/** First line on a data connection. */
export interface DataStreamHeader {
  readonly token: string
}

/**
 * What a stream-carrying method adds to the driver's result: proof of the bytes that crossed (sha256
 * over the segments' xxh128 hashes in order, src/transfer/stream-digest.ts).
 */
export interface StreamDigest {
  readonly streamDigest: string
  readonly streamBytes: number
}
