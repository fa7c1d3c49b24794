/** Run `fn` over items with at most `limit` at once; results in input order; the first failure wins. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length)
  let next = 0
  const errors: unknown[] = []
  const worker = async () => {
    while (next < items.length && errors.length === 0) {
      const i = next++
      try {
        out[i] = await fn(items[i] as T, i)
      } catch (e) {
        errors.push(e)
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(Math.max(1, limit), items.length) }, worker))
  if (errors.length > 0) throw errors[0]
  return out
}
