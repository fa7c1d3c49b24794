/**
 * AgentLauncher: the seam that gets an agent running on a host and connects to it. The local launcher
 * spawns a child process; the SSH launcher ("Agents over SSH") runs it over ssh2 with the same protocol.
 */
import type { Duplex, Readable, Writable } from 'node:stream'

export interface AgentConnection {
  /** Where the agent runs, for messages ("local", "root@ceph-b"). */
  readonly host: string
  /** The agent's control output (its stdout). */
  readonly fromAgent: Readable
  /** The agent's control input (its stdin). */
  readonly toAgent: Writable
  /** A new bulk-data connection to the agent's data socket. */
  openDataChannel(socketPath: string): Promise<Duplex>
  /** Resolves when the agent has exited, with the tail of what it printed on stderr. */
  readonly exited: Promise<{
    readonly code: number | null
    readonly signal: string | null
    readonly stderrTail: string
  }>
  /** Ask the agent to finish (close its input) and wait; kill it if it does not. */
  close(): Promise<void>
  /**
   * Transports whose link can drop (SSH) re-establish it here, so the client can re-attach to the
   * same agent (which lingers meanwhile). Absent: a lost control stream means the agent is gone.
   */
  reconnect?(signal?: AbortSignal): Promise<void>
  /** How long to keep re-attaching, and how often to ping a lingering-capable agent. */
  readonly resilience?: { readonly windowMs: number; readonly pingMs: number }
}

export interface AgentLauncher {
  launch(signal?: AbortSignal): Promise<AgentConnection>
}
