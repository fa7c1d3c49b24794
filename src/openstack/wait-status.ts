/** Polling an OpenStack object until it reaches a status, with a timeout that names what it waited for. */
import { SnapferryError } from '../errors/snapferry-error.js'

export interface WaitSpec<T> {
  /** "volume vm1-boot (3f2…) in RegionTwo of cloud lab" */
  readonly what: string
  readonly want: readonly string[]
  /** Statuses that will never turn into a wanted one. */
  readonly failOn?: readonly string[]
  readonly timeoutMs: number
  read(): Promise<T>
  status(v: T): string
  /** Why it failed, from the object (e.g. a server's fault message). */
  reason?(v: T): string | undefined
  readonly signal?: AbortSignal | undefined
}

export async function waitForStatus<T>(w: WaitSpec<T>): Promise<T> {
  const deadline = Date.now() + w.timeoutMs
  let delay = 250
  for (;;) {
    const v = await w.read()
    const s = w.status(v)
    if (w.want.includes(s)) return v
    if (w.failOn?.includes(s)) {
      const why = w.reason?.(v)
      throw new SnapferryError(
        'OPENSTACK_STATUS',
        `${w.what} went to ${s}${why ? `: ${why}` : ''} (wanted ${w.want.join(' or ')})`,
        {
          hint: 'look at the service logs for the object; fix the cause, reset or delete the object, then run again',
          details: { status: s, want: w.want },
        },
      )
    }
    if (Date.now() + delay > deadline) {
      throw new SnapferryError(
        'OPENSTACK_TIMEOUT',
        `${w.what} is still ${s} after ${Math.round(w.timeoutMs / 1000)} s (wanted ${w.want.join(' or ')})`,
        {
          transient: true,
          hint: 'raise the step timeout, or look at why the service is slow',
          details: { status: s, want: w.want, timeoutMs: w.timeoutMs },
        },
      )
    }
    if (w.signal?.aborted) throw new SnapferryError('ABORTED', `interrupted while waiting for ${w.what}`)
    await new Promise((r) => setTimeout(r, delay))
    delay = Math.min(delay * 2, 2000)
  }
}
