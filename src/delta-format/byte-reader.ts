/** A pull reader over an async byte stream that tracks the absolute offset, for precise error messages. */

export class ByteReader {
  readonly #it: AsyncIterator<Uint8Array>
  #chunk: Buffer = Buffer.alloc(0)
  #pos = 0
  #done = false
  /** Bytes consumed so far: the offset of the next byte to be read. */
  offset = 0

  constructor(source: AsyncIterable<Uint8Array>) {
    this.#it = source[Symbol.asyncIterator]()
  }

  /** True when the stream has no more bytes. */
  async atEnd(): Promise<boolean> {
    return !(await this.#fill())
  }

  async #fill(): Promise<boolean> {
    while (this.#pos >= this.#chunk.length) {
      if (this.#done) return false
      const next = await this.#it.next()
      if (next.done) {
        this.#done = true
        return false
      }
      const v = next.value
      this.#chunk = Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength)
      this.#pos = 0
    }
    return true
  }

  /** Exactly n bytes, or fewer if the stream ends first (the caller reports truncation). */
  async read(n: number): Promise<Buffer> {
    if (!(await this.#fill())) return Buffer.alloc(0)
    const avail = this.#chunk.length - this.#pos
    if (avail >= n) {
      const out = this.#chunk.subarray(this.#pos, this.#pos + n)
      this.#pos += n
      this.offset += n
      return out
    }
    const parts: Buffer[] = []
    let need = n
    while (need > 0 && (await this.#fill())) {
      const take = Math.min(need, this.#chunk.length - this.#pos)
      parts.push(this.#chunk.subarray(this.#pos, this.#pos + take))
      this.#pos += take
      this.offset += take
      need -= take
    }
    return Buffer.concat(parts)
  }

  /** Up to `max` bytes (at least 1 unless at end), without copying when the input chunk allows. */
  async readSome(max: number): Promise<Buffer> {
    if (!(await this.#fill())) return Buffer.alloc(0)
    const take = Math.min(max, this.#chunk.length - this.#pos)
    const out = this.#chunk.subarray(this.#pos, this.#pos + take)
    this.#pos += take
    this.offset += take
    return out
  }

  /** Stop reading: lets the underlying stream clean up. */
  async close(): Promise<void> {
    if (!this.#done) {
      this.#done = true
      await this.#it.return?.()
    }
  }
}
