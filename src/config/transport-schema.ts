/** The pipeline's `transport:` section: bandwidth, compression and how the SSH connections are made. */
import { z } from 'zod'
import { durationSchema, rateSchema } from './unit-schemas.js'

export const sshSchema = z.strictObject({
  config: z
    .string()
    .min(1)
    .default('~/.ssh/config')
    .describe(
      'OpenSSH client config to honour (Host, HostName, User, Port, IdentityFile, ProxyJump); `none` to ignore.',
    ),
  knownHosts: z
    .string()
    .min(1)
    .default('~/.ssh/known_hosts')
    .describe(
      'Host keys are verified against this file (hashed entries included); a host not in it is refused.',
    ),
  acceptNewHostKeys: z
    .boolean()
    .default(false)
    .describe(
      'Trust a host seen for the first time and add its key to `knownHosts` (like `StrictHostKeyChecking=accept-new`); a changed key is refused regardless.',
    ),
  identityFile: z
    .string()
    .min(1)
    .optional()
    .describe(
      'Private key to offer (after ssh-agent, via SSH_AUTH_SOCK); default: IdentityFile of ssh config, then ~/.ssh/id_ed25519, id_ecdsa, id_rsa.',
    ),
  agentCommand: z
    .array(z.string().min(1))
    .min(1)
    .default(['snapferry-agent'])
    .describe(
      'The agent on the remote host, as an argv list (each word quoted for the remote shell); e.g. `[node, /opt/snapferry/dist/agents/snapferry-agent.js]`.',
    ),
  connectTimeout: durationSchema
    .default(20_000)
    .describe('Limit for TCP connect, key exchange and authentication.'),
  keepaliveInterval: durationSchema
    .default(5_000)
    .describe('SSH keepalive period; a link silent for interval × keepaliveCountMax counts as dropped.'),
  keepaliveCountMax: z.number().int().min(1).max(100).default(3),
  reconnectWindow: durationSchema
    .default(120_000)
    .describe(
      'After a dropped link, how long to keep reconnecting; the agents keep their work in flight as long.',
    ),
})

export const COMPRESSION_SETTINGS = ['auto', 'none'] as const

export const transportSchema = z.strictObject({
  type: z
    .literal('relay')
    .default('relay')
    .describe('`relay`: source agent → controller → destination agent.'),
  bandwidth: rateSchema
    .default(Number.POSITIVE_INFINITY)
    .describe('Average bandwidth cap for the whole pipeline (bytes on the wire, after compression).'),
  compression: z
    .union([z.enum(COMPRESSION_SETTINGS), z.number().int().min(1).max(19)])
    .default('auto')
    .describe(
      'zstd on the source agent: `auto` (picks the level that moves data fastest, raw when it does not compress or the CPU is the bottleneck), `none`, or a level 1–19.',
    ),
  ssh: sshSchema.default(() => sshSchema.parse({})),
})
