/** Every pipeline in pipelines/ and examples/ parses; every invalid one fails with its exact error. */
import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { loadPipelineFile, parsePipeline } from '../../../src/config/load-pipeline.js'
import { SnapferryError } from '../../../src/errors/snapferry-error.js'

function yamlFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.yaml') || f.endsWith('.yml'))
    .filter((f) => !f.includes('work/'))
    .map((f) => path.join(dir, f))
}

describe('shipped pipelines', () => {
  const files = [...yamlFiles('pipelines'), ...yamlFiles('examples')]
  it('there are some', () => expect(files.length).toBeGreaterThan(1))
  for (const f of files) {
    it(`${f} is valid`, async () => {
      const cfg = await loadPipelineFile(f)
      expect(Object.isFrozen(cfg)).toBe(true)
      expect(Object.isFrozen(cfg.volumes[0]?.source)).toBe(true)
    })
  }
})

describe('invalid pipelines fail with their exact error', () => {
  const dir = 'test/fixtures/invalid-pipelines'
  for (const f of readdirSync(dir).filter((x) => x.endsWith('.yaml'))) {
    it(f, async () => {
      const [code, ...lines] = readFileSync(path.join(dir, f.replace(/\.yaml$/, '.expected')), 'utf8')
        .trimEnd()
        .split('\n')
      const err = await loadPipelineFile(path.join(dir, f)).then(
        () => undefined,
        (e: unknown) => e,
      )
      expect(err).toBeInstanceOf(SnapferryError)
      expect((err as SnapferryError).code).toBe(code)
      expect((err as SnapferryError).message).toBe(lines.join('\n'))
    })
  }
})

describe('pipeline defaults and units', () => {
  const minimal = `apiVersion: snapferry/v1
kind: Pipeline
name: p
volumes:
  - name: v
    source: { driver: file, path: a.img }
    destination: { driver: file, path: b.img, blockSize: 1MiB }
transport: { bandwidth: 100mbit/s }
convergence: { targetDowntime: 1m30s, roundInterval: 500ms }
`
  it('fills defaults, parses units and resolves paths against the file', () => {
    const cfg = parsePipeline(minimal, '/etc/snapferry/p.yaml')
    const v = cfg.volumes[0]
    if (v?.source.driver !== 'file' || v.destination.driver !== 'file')
      throw new Error('file endpoints expected')
    expect(v.source.path).toBe('/etc/snapferry/a.img')
    expect(v.source.blockSize).toBe(65536)
    expect(v.destination.blockSize).toBe(1 << 20)
    expect(cfg.transport.bandwidth).toBe(12_500_000)
    expect(cfg.convergence.targetDowntime).toBe(90_000)
    expect(cfg.convergence.roundInterval).toBe(500)
    expect(cfg.convergence.whenConverged).toBe('hold')
    expect(cfg.cutover.verify).toBe('full')
    expect(cfg.stateDir).toBe('/etc/snapferry/.snapferry/p')
    expect(cfg.concurrency).toBe(2)
  })
})

describe('rbd endpoints', () => {
  it('take pool/image, connection settings and defaults; relative conf paths resolve against the file', () => {
    const cfg = parsePipeline(
      `apiVersion: snapferry/v1
kind: Pipeline
name: p
volumes:
  - name: v
    source: { driver: rbd, pool: volumes, image: volume-1, conf: ceph-a.conf, id: cinder }
    destination: { driver: rbd, pool: volumes, image: volume-1, cluster: regionb, wholeObject: true }
`,
      '/etc/snapferry/p.yaml',
    )
    const v = cfg.volumes[0]
    if (v?.source.driver !== 'rbd' || v.destination.driver !== 'rbd')
      throw new Error('rbd endpoints expected')
    expect(v.source.conf).toBe('/etc/snapferry/ceph-a.conf')
    expect(v.source.timeout).toBe(60_000)
    expect(v.source.stageLimit).toBe(0)
    expect(v.destination.wholeObject).toBe(true)
  })

  it('refuse names a shell or rbd would read differently', () => {
    expect(() =>
      parsePipeline(
        `apiVersion: snapferry/v1
kind: Pipeline
name: p
volumes:
  - name: v
    source: { driver: rbd, pool: volumes, image: 'x; rm -rf /' }
    destination: { driver: rbd, pool: volumes, image: 'a@b' }
`,
        '/p.yaml',
      ),
    ).toThrowError(
      `invalid pipeline (2 problems) in /p.yaml
/p.yaml:6:50: volumes[0].source.image: 'x; rm -rf /' must be letters, digits, ".", "_" or "-" (no "/", "@" or spaces)
/p.yaml:7:55: volumes[0].destination.image: 'a@b' must be letters, digits, ".", "_" or "-" (no "/", "@" or spaces)`,
    )
  })
})

describe('JSON Schema for editors', () => {
  it('schema/pipeline.schema.json is current (regenerate with npm run schema)', async () => {
    const { pipelineJsonSchema } = await import('../../../src/config/pipeline-json-schema.js')
    const committed = JSON.parse(readFileSync('schema/pipeline.schema.json', 'utf8'))
    expect(committed).toEqual(JSON.parse(JSON.stringify(pipelineJsonSchema())))
  })
})
