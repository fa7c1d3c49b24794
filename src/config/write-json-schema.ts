/** `npm run schema`: regenerate schema/pipeline.schema.json (a test fails when it is stale). */
import { mkdirSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { pipelineJsonSchema } from './pipeline-json-schema.js'

const out = fileURLToPath(new URL('../../../schema/pipeline.schema.json', import.meta.url))
mkdirSync(new URL('../../../schema/', import.meta.url), { recursive: true })
writeFileSync(out, `${JSON.stringify(pipelineJsonSchema(), null, 2)}\n`)
console.log(`wrote ${out}`)
