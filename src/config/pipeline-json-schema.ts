/** The JSON Schema of pipeline files, for editors (schema/pipeline.schema.json), derived from the zod schema. */
import { z } from 'zod'
import { pipelineSchema } from './pipeline-schema.js'

export function pipelineJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(pipelineSchema, { io: 'input', unrepresentable: 'any' }) as Record<
    string,
    unknown
  >
  return {
    ...schema,
    $id: 'https://snapferry.dev/schema/pipeline.schema.json',
    title: 'snapferry pipeline',
    description:
      'A snapferry pipeline: volumes to move, transport, convergence target and cutover runbook. See docs/PIPELINES.md.',
  }
}
