/** Paths of the compiled programs that tests run as real processes (`npm test` builds first). */
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('../../', import.meta.url))
export const REPO_ROOT = root
export const AGENT_ENTRY = `${root}dist/agents/snapferry-agent.js`
export const CLI_ENTRY = `${root}dist/src/cli/main.js`

if (!existsSync(AGENT_ENTRY)) {
  throw new Error(`${AGENT_ENTRY} is missing: run \`npm run build\` (npm test does it for you)`)
}
