#!/usr/bin/env node
/** The snapferry command line: a table of contents of the commands (one file each in commands/). */
import { Command } from 'commander'
import { VERSION } from '../version.js'
import { abortCommand } from './commands/abort.js'
import { cutoverCommand } from './commands/cutover.js'
import { planCommand } from './commands/plan.js'
import { runCommand } from './commands/run.js'
import { statusCommand } from './commands/status.js'
import { validateCommand } from './commands/validate.js'
import { EXIT, EXIT_HELP } from './exit-codes.js'

const program = new Command()
  .name('snapferry')
  .description('Move live block volumes between regions with seconds of downtime.')
  .version(VERSION)
  .option('--log-file <file>', 'structured log (pino JSON); default <stateDir>/snapferry.log')
  .option('--log-level <level>', 'trace, debug, info, warn, error', 'debug')
  .addHelpText('after', EXIT_HELP)
  .exitOverride((err) => {
    process.exit(err.exitCode === 0 ? EXIT.OK : EXIT.USAGE)
  })

validateCommand(program)
planCommand(program)
runCommand(program)
statusCommand(program)
cutoverCommand(program)
abortCommand(program)

await program.parseAsync(process.argv)
