/** The one place that maps a pipeline host to the way its agent is started. */
import type { Logger } from '../logging/logger.js'
import type { AgentLauncher } from './agent-connection.js'
import { LocalAgentLauncher } from './local/local-agent-launcher.js'

export function launcherFor(host: string, log: Logger): AgentLauncher {
  if (host === 'local') return new LocalAgentLauncher(log)
  throw new Error(`implementation error: no launcher for host '${host}' (the schema admits only 'local')`)
}
