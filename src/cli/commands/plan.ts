/** snapferry plan PIPELINE — a dry run: volumes, sizes, where each resumes, the steps and the predicted timeline. */
import type { Command } from 'commander'
import { RemoteVolumeDriver } from '../../agent-protocol/remote-volume-driver.js'
import { formatBytes, formatDuration, formatRate } from '../../config/units.js'
import { verifyByVolume } from '../../config/verify-level.js'
import { predictWindow } from '../../convergence/predictor.js'
import { openVolumes } from '../../engine/open-volumes.js'
import { historyFromJournal } from '../../engine/round-history.js'
import { measuredHooks } from '../../engine/run-pipeline.js'
import { resolveOpenStack } from '../../openstack/resolve-volumes.js'
import { readJournal } from '../../state/journal.js'
import { planResume } from '../../state/resume-point.js'
import { fail, type GlobalOptions, loadWithLog } from '../cli-context.js'
import { EXIT, EXIT_HELP } from '../exit-codes.js'
import { describeRunbook } from './cutover.js'

export async function runPlan(file: string, opts: GlobalOptions): Promise<number> {
  try {
    const loaded = await loadWithLog(file, opts)
    const log = loaded.log
    const journal = await readJournal(loaded.cfg.stateDir)
    const out: string[] = [`plan for pipeline '${loaded.cfg.name}' (dry run: nothing is changed)`]
    // Cinder volumes are looked up (never created) and shown with the rbd images they map to.
    const resolved = await resolveOpenStack(loaded.cfg, { create: false, log })
    await resolved.openstack?.close()
    const cfg = resolved.cfg
    for (const m of resolved.mapping) out.push(`openstack: ${m}`)
    const vols = await openVolumes(cfg, log)
    try {
      for (const p of vols.pairs) {
        const [src, dst, srcSnaps, dstSnaps] = await Promise.all([
          p.source.describe(),
          p.destination.describe(),
          p.source.listSnapshots(),
          p.destination.listSnapshots(),
        ])
        const plan = planResume(p.name, srcSnaps, dstSnaps, journal)
        out.push(
          `volume ${p.name}: ${src.location} (${src.exists ? formatBytes(src.size) : 'MISSING'}) → ${dst.location} (${dst.exists ? `exists, ${formatBytes(dst.size)}` : 'will be created'})`,
        )
        const estimate =
          src.exists && p.source instanceof RemoteVolumeDriver
            ? await p.source.estimate(plan.resumeFrom ?? undefined)
            : undefined
        const amount =
          estimate === undefined
            ? `up to ${formatBytes(src.size)}; only non-zero blocks travel`
            : `~${formatBytes(estimate)} to ship, estimated by the driver`
        out.push(
          `  next: ${plan.resumeFrom ? `delta round ${plan.nextRound} from ${plan.resumeFrom}` : 'base'} (${amount})`,
        )
        for (const n of plan.notes) out.push(`  note: ${n}`)
        if (!src.exists) out.push('  PROBLEM: the source does not exist')
        const cinderDestination =
          loaded.cfg.volumes.find((v) => v.name === p.name)?.destination.driver === 'cinder'
        if (!plan.resumeFrom && dst.exists && dst.size > 0 && !plan.baseStartedByUs && !cinderDestination)
          out.push(
            '  PROBLEM: the destination holds data; the run will refuse unless --overwrite-destination',
          )
      }
    } finally {
      await vols.close()
    }
    const c = cfg.convergence
    out.push(
      `steps: base → delta rounds (at least ${c.minRounds}, at most ${c.maxRounds}) until the predicted window ≤ ${formatDuration(c.targetDowntime)} → ${c.whenConverged === 'cutover' ? 'cutover' : `hold warm (a round every ${formatDuration(c.holdInterval)}) until \`snapferry cutover\``}`,
    )
    out.push(
      `bandwidth: ${formatRate(cfg.transport.bandwidth)}; volumes at once: ${cfg.concurrency}; snapshots kept: ${cfg.snapshots.keep}`,
    )
    const rounds = historyFromJournal(journal)
    if (rounds.length > 0) {
      const hooks = measuredHooks(journal)
      const p = predictWindow({
        rounds,
        bandwidthLimit: cfg.transport.bandwidth,
        verify: verifyByVolume(cfg),
        beforeHooksMs: cfg.cutover.before.length ? hooks.before : 0,
        afterHooksMs: cfg.cutover.after.length ? hooks.after : 0,
        concurrency: cfg.concurrency,
        pauseBeforeCutoverMs: 0,
      })
      out.push(
        `predicted cutover window from ${rounds.length} measured rounds: ${formatDuration(p.windowMs)} (dirty ${formatRate(p.dirtyBytesPerSecond)}, link ${formatRate(p.linkBytesPerSecond)})`,
      )
      for (const cv of p.caveats) out.push(`  caveat: ${cv}`)
    } else {
      out.push(
        'predicted cutover window: unknown until the first rounds measure the link, the scan rate and the dirty rate',
      )
    }
    process.stdout.write(`${out.join('\n')}\n${describeRunbook(cfg)}`)
    return EXIT.OK
  } catch (e) {
    return fail(e)
  }
}

export function planCommand(program: Command): void {
  program
    .command('plan')
    .description(
      'dry run: show volumes, sizes, resume points, steps and the predicted timeline; changes nothing',
    )
    .argument('<pipeline>', 'pipeline YAML file')
    .addHelpText('after', EXIT_HELP)
    .action(async (file: string, _o: unknown, cmd: Command) => {
      process.exitCode = await runPlan(file, cmd.optsWithGlobals())
    })
}
