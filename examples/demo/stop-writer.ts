/** The demo's `before` hook: stop the live writer and wait until it has really exited. Usage: stop-writer PIDFILE */
import { readFile } from 'node:fs/promises'

const pidFile = process.argv[2] as string
const pid = Number(await readFile(pidFile, 'utf8').catch(() => '0'))
if (!pid) {
  process.stdout.write('writer not running\n')
  process.exit(0)
}
process.kill(pid, 'SIGTERM')
const alive = () => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}
while (alive()) await new Promise((r) => setTimeout(r, 10))
process.stdout.write(`writer ${pid} stopped\n`)
