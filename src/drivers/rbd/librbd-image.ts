/**
 * RbdImageCalls in the process's open librbd session (librbd-session.ts), with the rbd CLI's RbdImage
 * behind it wherever librbd is not usable (no python3-rbd, or no session could connect) and for the
 * rare calls that create or remove images.
 */

import type { SnapferryError } from '../../errors/snapferry-error.js'
import { type LibrbdSession, librbdSession } from './librbd-session.js'
import type { RbdConnection } from './rbd-cli.js'
import { type RbdExtent, RbdImage, type RbdImageCalls, type RbdSnapshot } from './rbd-image.js'

/** Pool, namespace and image of a spec (`pool/[namespace/]image`), as the Python side takes them. */
export function imageWhere(spec: string): { pool: string; namespace: string | null; image: string } {
  const parts = spec.split('/')
  return {
    pool: parts[0] as string,
    namespace: parts.length === 3 ? (parts[1] as string) : null,
    image: parts.at(-1) as string,
  }
}

export class LibrbdImage implements RbdImageCalls {
  readonly spec: string
  readonly #conn: RbdConnection
  readonly #cli: RbdImage
  readonly #label: string
  readonly #where: { pool: string; namespace: string | null; image: string }

  constructor(conn: RbdConnection, spec: string, label: string) {
    this.#conn = conn
    this.spec = spec
    this.#label = label
    this.#cli = new RbdImage(conn, spec, label)
    this.#where = imageWhere(spec)
  }

  /** One call in the session, or through the CLI where there is none. */
  async #either<T>(cli: () => Promise<T>, lib: (s: LibrbdSession) => Promise<T>): Promise<T> {
    const s = await librbdSession(this.#conn)
    return s ? lib(s) : cli()
  }

  #call<T>(s: LibrbdSession, op: string, what: string, signal?: AbortSignal, args = {}): Promise<T> {
    return s.call<T>(op, { ...this.#where, ...args }, `${what} (${this.#label})`, signal)
  }

  size(signal?: AbortSignal): Promise<number | undefined> {
    return this.#either(
      () => this.#cli.size(signal),
      (s) => this.#call<number>(s, 'size', 'info', signal).catch(absentAs(undefined)),
    )
  }

  snapshots(signal?: AbortSignal): Promise<RbdSnapshot[]> {
    return this.#either(
      () => this.#cli.snapshots(signal),
      async (s) =>
        (
          await this.#call<{ id: number; name: string; size: number; timestamp: number }[]>(
            s,
            'snapshots',
            'snap ls',
            signal,
          ).catch(absentAs([]))
        )
          .map((x) => ({ ...x, timestamp: new Date(x.timestamp * 1000).toISOString() }))
          .sort((a, b) => a.id - b.id),
    )
  }

  snapCreate(name: string, signal?: AbortSignal): Promise<void> {
    return this.#either(
      () => this.#cli.snapCreate(name, signal),
      (s) => this.#call(s, 'snapCreate', `snap create ${name}`, signal, { name }),
    )
  }

  snapRemove(name: string, signal?: AbortSignal): Promise<void> {
    return this.#either(
      () => this.#cli.snapRemove(name, signal),
      (s) => this.#call(s, 'snapRemove', `snap rm ${name}`, signal, { name }),
    )
  }

  diff(
    fromSnap: string | undefined,
    signal?: AbortSignal,
    opts: { readonly wholeObject?: boolean } = {},
  ): Promise<RbdExtent[]> {
    return this.#either(
      () => this.#cli.diff(fromSnap, signal, opts),
      async (s) =>
        (
          await this.#call<[number, number, boolean][]>(s, 'diff', 'diff', signal, {
            fromSnap: fromSnap ?? null,
            wholeObject: opts.wholeObject === true,
          })
        ).map(([offset, length, exists]) => ({ offset, length, exists })),
    )
  }

  create(size: number): Promise<void> {
    return this.#cli.create(size)
  }

  remove(): Promise<void> {
    return this.#cli.remove()
  }

  metaGet(key: string, signal?: AbortSignal): Promise<string | undefined> {
    return this.#either(
      () => this.#cli.metaGet(key, signal),
      async (s) =>
        (await this.#call<string | null>(s, 'metaGet', 'image-meta get', signal, { key })) ?? undefined,
    )
  }

  metaSet(key: string, value: string, signal?: AbortSignal): Promise<void> {
    return this.#either(
      () => this.#cli.metaSet(key, value, signal),
      (s) => this.#call(s, 'metaSet', 'image-meta set', signal, { key, value }),
    )
  }

  prepareMetaSet(signal?: AbortSignal): Promise<{ release(): Promise<void> }> {
    return this.#either(
      () => this.#cli.prepareMetaSet(),
      async (s) => {
        await this.#call(s, 'holdWritable', 'open', signal)
        return { release: () => this.#call<void>(s, 'releaseWritable', 'close') }
      },
    )
  }

  metaRemove(key: string, signal?: AbortSignal): Promise<void> {
    return this.#either(
      () => this.#cli.metaRemove(key, signal),
      (s) => this.#call(s, 'metaRemove', 'image-meta remove', signal, { key }),
    )
  }
}

/** A missing image answers "absent", as RbdImage does; anything else still fails. */
function absentAs<T>(value: T): (e: unknown) => T {
  return (e) => {
    if ((e as SnapferryError).code === 'VOLUME_NOT_FOUND') return value
    throw e
  }
}
