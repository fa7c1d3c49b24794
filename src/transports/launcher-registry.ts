/** The one place that maps a pipeline host to the way its agent is started. */
import type { PipelineConfig } from '../config/pipeline-config.js'
import { HOST_LOCAL } from '../config/pipeline-schema.js'
import type { Logger } from '../logging/logger.js'
import type { AgentLauncher } from './agent-connection.js'
import { LocalAgentLauncher } from './local/local-agent-launcher.js'
import { SshAgentLauncher } from './ssh/ssh-agent-launcher.js'
import { resolveTarget } from './ssh/ssh-target.js'

export function launcherFor(host: string, cfg: PipelineConfig, log: Logger): AgentLauncher {
  if (host === HOST_LOCAL) return new LocalAgentLauncher(log)
  const ssh = cfg.transport.ssh
  return new SshAgentLauncher(
    resolveTarget(host, { config: ssh.config, knownHosts: ssh.knownHosts, identityFile: ssh.identityFile }),
    {
      acceptNewHostKeys: ssh.acceptNewHostKeys,
      connectTimeoutMs: ssh.connectTimeout,
      keepaliveIntervalMs: ssh.keepaliveInterval,
      keepaliveCountMax: ssh.keepaliveCountMax,
      agentCommand: ssh.agentCommand,
      reconnectWindowMs: ssh.reconnectWindow,
    },
    log,
  )
}
