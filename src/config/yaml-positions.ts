/** Map a path inside a parsed YAML document back to its line and column, for error messages. */
import { type Document, isMap, isScalar, isSeq, type LineCounter, type Node } from 'yaml'

export interface Position {
  readonly line: number
  readonly col: number
}

/**
 * The position of the node at `path`, or of the deepest existing ancestor when the path is missing
 * (a missing key is reported where its parent mapping starts). With `atKey`, point at the key itself.
 */
export function positionOf(
  doc: Document,
  lc: LineCounter,
  path: readonly PropertyKey[],
  atKey?: string,
): Position | undefined {
  let node: unknown = doc.contents
  for (const seg of path) {
    const next = childOf(node, seg)
    if (next === undefined) break
    node = next
  }
  if (atKey !== undefined && isMap(node)) {
    const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === atKey)
    if (pair && isScalar(pair.key) && pair.key.range) return lc.linePos(pair.key.range[0])
  }
  const range = (node as Node | null)?.range
  return range ? lc.linePos(range[0]) : undefined
}

function childOf(node: unknown, seg: PropertyKey): unknown {
  if (isMap(node)) {
    const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg))
    return pair?.value ?? undefined
  }
  if (isSeq(node) && typeof seg === 'number') return node.items[seg]
  return undefined
}

/** "volumes[0].source.driver" */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = ''
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`
    else out += out === '' ? String(seg) : `.${String(seg)}`
  }
  return out === '' ? '(top level)' : out
}
