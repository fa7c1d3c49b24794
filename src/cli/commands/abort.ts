/** snapferry abort PIPELINE [--clean-snapshots] — stop a running pipeline; optionally remove snapferry's snapshots. */
import type { Command } from 'commander'
import { openVolumes } from '../../engine/open-volumes.js'
import { resolveOpenStack } from '../../openstack/resolve-volumes.js'
import { Journal } from '../../state/journal.js'
import { acquireLock, holderAlive, readLock } from '../../state/pipeline-lock.js'
import { fail, type GlobalOptions, loadWithLog } from '../cli-context.js'
import { EXIT, EXIT_HELP } from '../exit-codes.js'

export async function runAbort(
  file: string,
  opts: GlobalOptions & { cleanSnapshots?: boolean },
): Promise<number> {
  try {
    const { cfg, log } = await loadWithLog(file, opts)
    const lock = await readLock(cfg.stateDir)
    if (lock && holderAlive(lock)) {
      process.stdout.write(`stopping snapferry pid ${lock.pid} (${lock.command})\n`)
      process.kill(lock.pid, 'SIGTERM')
      for (let i = 0; i < 120 && holderAlive(lock) && (await readLock(cfg.stateDir))?.pid === lock.pid; i++)
        await new Promise((r) => setTimeout(r, 500))
    }
    if (!opts.cleanSnapshots) return EXIT.OK
    const release = await acquireLock(cfg.stateDir, cfg.name, `abort ${file}`)
    const journal = await Journal.open(cfg.stateDir)
    const resolved = await resolveOpenStack(cfg, { create: false, log })
    await resolved.openstack?.close()
    const vols = await openVolumes(resolved.cfg, log)
    try {
      for (const pair of vols.pairs) {
        for (const side of ['source', 'destination'] as const) {
          for (const s of await pair[side].listSnapshots()) {
            await journal.append({ type: 'snapshot-deleting', volume: pair.name, side, name: s.name })
            await pair[side].deleteSnapshot(s.name)
            await journal.append({ type: 'snapshot-deleted', volume: pair.name, side, name: s.name })
            process.stdout.write(`removed ${side} snapshot ${s.name} of volume ${pair.name}\n`)
          }
        }
      }
      await journal.append({
        type: 'phase',
        phase: 'aborted',
        detail: 'snapshots removed: the next run ships a new base',
      })
    } finally {
      await vols.close()
      await journal.close()
      await release()
    }
    return EXIT.OK
  } catch (e) {
    return fail(e)
  }
}

export function abortCommand(program: Command): void {
  program
    .command('abort')
    .description(
      "stop a running pipeline (it finishes its current step safely); with --clean-snapshots remove snapferry's snapshots on both sides",
    )
    .argument('<pipeline>', 'pipeline YAML file')
    .option(
      '--clean-snapshots',
      "remove every snapshot snapferry made for this pipeline's volumes (the next run ships a new base)",
    )
    .addHelpText('after', EXIT_HELP)
    .action(async (file: string, opts: { cleanSnapshots?: boolean }, cmd: Command) => {
      process.exitCode = await runAbort(file, { ...cmd.optsWithGlobals(), ...opts })
    })
}
