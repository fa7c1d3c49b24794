/** Which verification each volume really gets for `verify: records`. */
import { describe, expect, it } from 'vitest'
import { parsePipeline } from '../../../src/config/load-pipeline.js'
import { verifyByVolume } from '../../../src/config/verify-level.js'

const pipeline = (verify: string) =>
  parsePipeline(
    `apiVersion: snapferry/v1
kind: Pipeline
name: v
volumes:
  - name: files
    source: { driver: file, path: /a.img, blockSize: 16KiB }
    destination: { driver: file, path: /b.img, blockSize: 16KiB }
  - name: mixed-blocks
    source: { driver: file, path: /c.img, blockSize: 16KiB }
    destination: { driver: file, path: /d.img, blockSize: 64KiB }
  - name: images
    source: { driver: rbd, pool: rbd, image: a }
    destination: { driver: rbd, pool: rbd, image: b, host: backup.example.org }
  - name: file-to-rbd
    source: { driver: file, path: /e.img }
    destination: { driver: rbd, pool: rbd, image: e }
cutover: { verify: ${verify} }
`,
    'v.yaml',
  )

describe('verify levels', () => {
  it('records: block-hash records for same-block files, the verified chain for rbd ↔ rbd, every byte otherwise', () => {
    expect(verifyByVolume(pipeline('records'))).toEqual({
      files: 'records',
      'mixed-blocks': 'full',
      images: 'records',
      'file-to-rbd': 'full',
    })
  })

  it('full and none apply as written', () => {
    expect(Object.values(verifyByVolume(pipeline('full')))).toEqual(['full', 'full', 'full', 'full'])
    expect(Object.values(verifyByVolume(pipeline('none')))).toEqual(['none', 'none', 'none', 'none'])
  })
})
