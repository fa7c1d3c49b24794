/** Requests to a running pipeline from other commands: a file in the state directory (`snapferry cutover`). */
import { access, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'

export const CUTOVER_REQUEST = 'cutover.request'

export async function requestCutover(stateDir: string): Promise<void> {
  await writeFile(path.join(stateDir, CUTOVER_REQUEST), new Date().toISOString())
}

/** True (and the request consumed) when someone asked for a cutover. */
export async function takeCutoverRequest(stateDir: string): Promise<boolean> {
  const file = path.join(stateDir, CUTOVER_REQUEST)
  try {
    await access(file)
  } catch {
    return false
  }
  await rm(file, { force: true })
  return true
}
