/** Walk a zod schema along a data path, to tell the user which keys would have been valid. */
import type { z } from 'zod'

type AnySchema = z.core.$ZodType

function unwrap(s: AnySchema): AnySchema {
  let cur = s
  for (;;) {
    const def = cur._zod.def as unknown as { type: string; innerType?: AnySchema; in?: AnySchema }
    if ((def.type === 'default' || def.type === 'optional' || def.type === 'nullable') && def.innerType) {
      cur = def.innerType
    } else if (def.type === 'pipe' && def.in) {
      cur = def.in
    } else {
      return cur
    }
  }
}

/** The object schema at `path` (choosing union members by the data's discriminator), or undefined. */
export function schemaAt(
  root: AnySchema,
  path: readonly PropertyKey[],
  data: unknown,
): AnySchema | undefined {
  let s: AnySchema | undefined = resolveUnion(unwrap(root), data)
  let d = data
  for (const seg of path) {
    if (!s) return undefined
    const def = s._zod.def as unknown as {
      type: string
      shape?: Record<string, AnySchema>
      element?: AnySchema
    }
    if (def.type === 'object' && def.shape) s = def.shape[String(seg)]
    else if (def.type === 'array' && def.element) s = def.element
    else return undefined
    d = d && typeof d === 'object' ? (d as Record<PropertyKey, unknown>)[seg as string] : undefined
    s = s ? resolveUnion(unwrap(s), d) : undefined
  }
  return s
}

function resolveUnion(s: AnySchema, data: unknown): AnySchema {
  const def = s._zod.def as unknown as { type: string; options?: AnySchema[]; discriminator?: string }
  if (def.type !== 'union' || !def.discriminator || !def.options) return s
  const want =
    data && typeof data === 'object' ? (data as Record<string, unknown>)[def.discriminator] : undefined
  for (const opt of def.options) {
    const shape = objectKeys(opt)
    const disc = shape
      ? (unwrap(opt)._zod.def as unknown as { shape: Record<string, AnySchema> }).shape
      : undefined
    const lit = disc?.[def.discriminator]?._zod.def as unknown as { values?: unknown[] } | undefined
    if (lit?.values?.includes(want)) return unwrap(opt)
  }
  return s
}

/** The keys an object schema allows, in declaration order. */
export function objectKeys(s: AnySchema | undefined): string[] | undefined {
  if (!s) return undefined
  const def = unwrap(s)._zod.def as unknown as { type: string; shape?: Record<string, AnySchema> }
  return def.type === 'object' && def.shape ? Object.keys(def.shape) : undefined
}

/** The closest candidate by edit distance, if it is close enough to be a likely typo. */
export function didYouMean(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined
  let bestDist = Number.POSITIVE_INFINITY
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase())
    if (d < bestDist) {
      bestDist = d
      best = c
    }
  }
  return best !== undefined && bestDist <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    const cur = [i]
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(
        (prev[j] ?? 0) + 1,
        (cur[j - 1] ?? 0) + 1,
        (prev[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1),
      )
    }
    prev = cur
  }
  return prev[b.length] ?? 0
}
