/** Where a run tells the operator what happens: permanent lines, and a transient status on terminals. */

export interface RunReporter {
  /** A line that stays (round summaries, predictions, cutover steps). */
  line(text: string): void
  /** A status that the next status or line replaces (bytes, rate, ETA); dropped when not a terminal. */
  status(text: string): void
}

export function streamReporter(out: NodeJS.WriteStream): RunReporter {
  const tty = out.isTTY === true
  let shown = false
  const clear = () => {
    if (shown) out.write('\r\x1b[2K')
    shown = false
  }
  return {
    line(text) {
      clear()
      out.write(`${text}\n`)
    },
    status(text) {
      if (!tty) return
      clear()
      out.write(text.slice(0, Math.max(40, (out.columns || 120) - 1)))
      shown = true
    },
  }
}
