/** Load a pipeline file: YAML with positions → schema validation → cross-checks → frozen PipelineConfig. */
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { LineCounter, parseDocument } from 'yaml'
import type { z } from 'zod'
import { SnapferryError } from '../errors/snapferry-error.js'
import { endpointKey, endpointLocation } from './endpoint-location.js'
import { deepFreeze, type PipelineConfig } from './pipeline-config.js'
import { pipelineSchema } from './pipeline-schema.js'
import { didYouMean, objectKeys, schemaAt } from './schema-walk.js'
import { formatPath, positionOf } from './yaml-positions.js'

/** One thing wrong with a pipeline, located in its file. */
export interface ConfigProblem {
  readonly line: number | undefined
  readonly col: number | undefined
  readonly path: string
  readonly message: string
}

export async function loadPipelineFile(file: string): Promise<PipelineConfig> {
  const abs = path.resolve(file)
  let text: string
  try {
    text = await readFile(abs, 'utf8')
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    throw new SnapferryError('CONFIG_NOT_FOUND', `cannot read pipeline ${file}: ${code ?? String(e)}`, {
      cause: e,
      hint: 'pass the path of a pipeline YAML file (see examples/ and pipelines/)',
      details: { file: abs },
    })
  }
  return parsePipeline(text, abs)
}

/** Parse pipeline text; `file` names it in errors and anchors relative paths. */
export function parsePipeline(text: string, file: string): PipelineConfig {
  const lc = new LineCounter()
  const doc = parseDocument(text, { lineCounter: lc, uniqueKeys: true, prettyErrors: false })
  if (doc.errors.length > 0) {
    const problems = doc.errors.map((e) => {
      const pos = lc.linePos(e.pos[0])
      return { line: pos.line, col: pos.col, path: '', message: e.message.split('\n')[0] ?? e.message }
    })
    throw configError('CONFIG_YAML_SYNTAX', file, problems, 'fix the YAML syntax at the position shown')
  }
  const data: unknown = doc.toJS()
  if (data === null || data === undefined) {
    throw configError('CONFIG_INVALID', file, [
      { line: 1, col: 1, path: '(top level)', message: 'the file is empty' },
    ])
  }
  const parsed = pipelineSchema.safeParse(data)
  const problems: ConfigProblem[] = []
  if (!parsed.success) {
    for (const issue of parsed.error.issues) problems.push(...describeIssue(issue, data, doc, lc))
  } else {
    for (const p of crossCheck(parsed.data, file)) {
      const pos = positionOf(doc, lc, p.path)
      problems.push({ line: pos?.line, col: pos?.col, path: formatPath(p.path), message: p.message })
    }
  }
  if (problems.length > 0 || !parsed.success) throw configError('CONFIG_INVALID', file, problems)
  return deepFreeze(resolvePaths(parsed.data, file))
}

function describeIssue(
  issue: z.core.$ZodIssue,
  data: unknown,
  doc: ReturnType<typeof parseDocument>,
  lc: LineCounter,
): ConfigProblem[] {
  const where = (p: readonly PropertyKey[], atKey?: string) => {
    const pos = positionOf(doc, lc, p, atKey)
    return { line: pos?.line, col: pos?.col }
  }
  const p = issue.path
  switch (issue.code) {
    case 'unrecognized_keys': {
      const allowed = objectKeys(schemaAt(pipelineSchema, p, data)) ?? []
      return issue.keys.map((key) => {
        const guess = didYouMean(key, allowed)
        const suffix = guess ? ` (did you mean '${guess}'?)` : ''
        return {
          ...where(p, key),
          path: formatPath([...p, key]),
          message: `unknown key '${key}' — expected one of: ${allowed.join(', ')}${suffix}`,
        }
      })
    }
    case 'invalid_union': {
      const disc = (issue as { discriminator?: string }).discriminator
      const options = (issue as { options?: unknown[] }).options
      if (disc && options) {
        const got = valueAt(data, p)
        const message =
          got === undefined
            ? `missing '${disc}' — expected one of: ${options.join(', ')}`
            : `unknown ${disc} '${String(got)}' — expected one of: ${options.join(', ')}`
        return [{ ...where(p), path: formatPath(p), message }]
      }
      return [{ ...where(p), path: formatPath(p), message: issue.message }]
    }
    case 'invalid_value': {
      const got = valueAt(data, p)
      const values = issue.values.map((v) => `'${String(v)}'`)
      const message =
        values.length === 1
          ? `must be ${values[0]}${got === undefined ? '' : `, not '${String(got)}'`}`
          : `'${String(got)}' is not valid — expected one of: ${values.join(', ')}`
      return [{ ...where(p), path: formatPath(p), message }]
    }
    case 'invalid_type': {
      const got = valueAt(data, p)
      if (got === undefined) {
        const key = String(p[p.length - 1])
        return [{ ...where(p.slice(0, -1)), path: formatPath(p), message: `missing required key '${key}'` }]
      }
      const expected = issue.expected === 'int' ? 'a whole number' : `a ${issue.expected}`
      return [{ ...where(p), path: formatPath(p), message: `expected ${expected}, got ${describe(got)}` }]
    }
    case 'too_small':
    case 'too_big': {
      const bound = issue.code === 'too_small' ? issue.minimum : issue.maximum
      const got = valueAt(data, p)
      const isList = Array.isArray(got)
      const rel = issue.code === 'too_small' ? 'at least' : 'at most'
      const message = isList
        ? `needs ${rel} ${String(bound)} item${bound === 1 ? '' : 's'}`
        : `must be ${rel} ${String(bound)}, got ${describe(got)}`
      return [{ ...where(p), path: formatPath(p), message }]
    }
    case 'invalid_format':
      return [{ ...where(p), path: formatPath(p), message: `'${String(valueAt(data, p))}' ${issue.message}` }]
    default:
      return [{ ...where(p), path: formatPath(p), message: issue.message }]
  }
}

function valueAt(data: unknown, p: readonly PropertyKey[]): unknown {
  let cur = data
  for (const seg of p) {
    if (cur === null || typeof cur !== 'object') return undefined
    cur = (cur as Record<PropertyKey, unknown>)[seg as string]
  }
  return cur
}

function describe(v: unknown): string {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'a list'
  if (typeof v === 'object') return 'a mapping'
  if (typeof v === 'string') return `'${v}'`
  return String(v)
}

type Parsed = z.output<typeof pipelineSchema>

/** Rules that span fields: unique volume names, no volume copied onto itself or onto another's target. */
function crossCheck(cfg: Parsed, file: string): { path: PropertyKey[]; message: string }[] {
  const out: { path: PropertyKey[]; message: string }[] = []
  const names = new Map<string, number>()
  const targets = new Map<string, number>()
  const resolved = resolvePaths(cfg, file)
  resolved.volumes.forEach((v, i) => {
    const prev = names.get(v.name)
    if (prev !== undefined) {
      out.push({
        path: ['volumes', i, 'name'],
        message: `duplicate volume name '${v.name}' (also volumes[${prev}])`,
      })
    }
    names.set(v.name, i)
    const dstKey = endpointKey(v.destination)
    const where =
      v.destination.driver === 'file' ? 'path' : v.destination.driver === 'cinder' ? 'volume' : 'image'
    if (endpointKey(v.source) === dstKey) {
      out.push({
        path: ['volumes', i, 'destination', where],
        message: `destination is the source itself (${endpointLocation(v.destination)}) — give the copy its own ${where}`,
      })
    }
    // A cinder destination without `volume:` is a volume snapferry creates: never shared.
    const created = v.destination.driver === 'cinder' && !v.destination.volume
    const other = created ? undefined : targets.get(dstKey)
    if (other !== undefined) {
      out.push({
        path: ['volumes', i, 'destination', where],
        message: `destination ${endpointLocation(v.destination)} is also the destination of volumes[${other}]`,
      })
    }
    targets.set(dstKey, i)
  })
  out.push(...openstackChecks(cfg))
  return out
}

/** `cinder` endpoints and typed steps need `openstack:` with their region; steps name pipeline volumes. */
function openstackChecks(cfg: Parsed): { path: PropertyKey[]; message: string }[] {
  const out: { path: PropertyKey[]; message: string }[] = []
  const regions = cfg.openstack ? Object.keys(cfg.openstack.regions) : []
  const checkRegion = (region: string, at: PropertyKey[]) => {
    if (!cfg.openstack)
      out.push({ path: at, message: 'needs an `openstack:` section (cloud and regions) in the pipeline' })
    else if (!regions.includes(region))
      out.push({
        path: at,
        message: `region '${region}' is not under openstack.regions (${regions.join(', ') || 'none'})`,
      })
  }
  cfg.volumes.forEach((v, i) => {
    for (const side of ['source', 'destination'] as const) {
      const ep = v[side]
      if (ep.driver !== 'cinder') continue
      checkRegion(ep.region, ['volumes', i, side, 'region'])
      if (side === 'source' && !ep.volume)
        out.push({ path: ['volumes', i, side], message: 'a cinder source needs `volume:` (id or name)' })
    }
  })
  const names = new Set(cfg.volumes.map((v) => v.name))
  for (const phase of ['before', 'after', 'rollback'] as const) {
    cfg.cutover[phase].forEach((h, j) => {
      if (!('openstack' in h)) return
      const a = h.openstack
      const at: PropertyKey[] = ['cutover', phase, j, 'openstack']
      checkRegion(a.region, [...at, 'region'])
      const refs = [
        ...('volumes' in a && a.volumes ? a.volumes : []),
        ...('bootVolume' in a ? [a.bootVolume] : []),
        ...('volume' in a && a.volume ? [a.volume] : []),
      ]
      for (const r of refs)
        if (!names.has(r)) out.push({ path: at, message: `volume '${r}' is not a volume of this pipeline` })
      if (a.action === 'wait-status' && !a.server === !a.volume)
        out.push({ path: at, message: 'wait-status needs exactly one of `server:` or `volume:`' })
    })
  }
  return out
}

function resolveEndpoint(
  ep: Parsed['volumes'][number]['source'],
  abs: (p: string) => string,
): Parsed['volumes'][number]['source'] {
  if (ep.driver === 'file') {
    return { ...ep, path: abs(ep.path), ...(ep.stateDir ? { stateDir: abs(ep.stateDir) } : {}) }
  }
  if (ep.driver === 'cinder') return ep
  return {
    ...ep,
    ...(ep.conf ? { conf: abs(ep.conf) } : {}),
    ...(ep.keyring ? { keyring: abs(ep.keyring) } : {}),
    ...(ep.stageDir ? { stageDir: abs(ep.stageDir) } : {}),
  }
}

function resolvePaths(cfg: Parsed, file: string): PipelineConfig {
  const dir = path.dirname(file)
  const abs = (p: string) => path.resolve(dir, p)
  const hooks = (hs: Parsed['cutover']['before']) =>
    hs.map((h) => ('run' in h && h.cwd ? { ...h, cwd: abs(h.cwd) } : h))
  return {
    ...cfg,
    file,
    stateDir: abs(cfg.stateDir ?? path.join('.snapferry', cfg.name)),
    volumes: cfg.volumes.map((v) => ({
      ...v,
      source: resolveEndpoint(v.source, abs),
      destination: resolveEndpoint(v.destination, abs),
    })),
    cutover: {
      ...cfg.cutover,
      before: hooks(cfg.cutover.before),
      after: hooks(cfg.cutover.after),
      rollback: hooks(cfg.cutover.rollback),
    },
  }
}

function configError(
  code: 'CONFIG_INVALID' | 'CONFIG_YAML_SYNTAX',
  file: string,
  problems: readonly ConfigProblem[],
  hint = 'fix the keys shown; `snapferry validate FILE` re-checks, schema/pipeline.schema.json gives editors completion',
): SnapferryError {
  const rel = path.relative(process.cwd(), file)
  const shown = rel && !rel.startsWith('..') ? rel : file
  const lines = problems.map(
    (p) => `${shown}:${p.line ?? '?'}:${p.col ?? '?'}: ${p.path ? `${p.path}: ` : ''}${p.message}`,
  )
  const head =
    code === 'CONFIG_YAML_SYNTAX'
      ? 'YAML syntax error'
      : `invalid pipeline (${problems.length} problem${problems.length === 1 ? '' : 's'})`
  return new SnapferryError(code, `${head} in ${shown}\n${lines.join('\n')}`, {
    hint,
    details: { file, problems },
  })
}
