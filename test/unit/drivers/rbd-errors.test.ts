/** rbd's stderr, as Ceph 16.2.15 prints it, mapped to snapferry's codes. */
import { describe, expect, it } from 'vitest'
import { rbdError } from '../../../src/drivers/rbd/rbd-errors.js'

const map = (exit: number, stderr: string) => rbdError('import-diff into rbd/x', ['rbd'], exit, stderr)

describe('rbd error mapping', () => {
  it.each([
    [
      22,
      "rbd: start snapshot 'snapferry-1' does not exist in the image, aborting\nrbd: import-diff failed: (22) Invalid argument",
      'SNAPSHOT_NOT_FOUND',
      false,
    ],
    [
      17,
      "rbd: end snapshot 'snapferry-2' already exists, aborting\nrbd: import-diff failed: (17) File exists",
      'SNAPSHOT_EXISTS',
      false,
    ],
    [
      2,
      '2026-11-22T00:03:04.000+0000 7f 0 librbd: error opening image x: (2) No such file or directory\nrbd: error opening image x: (2) No such file or directory',
      'VOLUME_NOT_FOUND',
      false,
    ],
    [
      110,
      'librbd::image::OpenRequest: failed to register watch: (110) Connection timed out\nrbd: error opening image vm1: (110) Connection timed out',
      'CLUSTER_UNREACHABLE',
      true,
    ],
    [1, "rbd: couldn't connect to the cluster!", 'CLUSTER_UNREACHABLE', true],
    [28, 'rbd: import-diff failed: (28) No space left on device', 'VOLUME_NO_SPACE', false],
    [122, 'rbd: write failed: (122) Disk quota exceeded', 'VOLUME_NO_SPACE', false],
    [17, 'rbd: create error: (17) File exists', 'VOLUME_EXISTS', false],
    [13, 'rbd: error opening pool volumes: (13) Permission denied', 'RBD_CLI_FAILED', false],
    [5, 'something else entirely', 'RBD_CLI_FAILED', false],
  ])('exit %i → %s', (exit, stderr, code, transient) => {
    const e = map(exit, stderr)
    expect(e.code).toBe(code)
    expect(e.transient).toBe(transient)
    expect(e.message).toContain(`import-diff into rbd/x: rbd exited with status ${exit}: `)
    expect(e.hint).toBeTruthy()
  })

  it('keeps the last lines of stderr without timestamps or progress', () => {
    const e = map(
      22,
      'Importing image diff: 10% complete...\n2026-11-22T00:03:04.000+0000 7f1 -1 librbd: boom\nrbd: import-diff failed: (22) Invalid argument\n',
    )
    expect(e.message).toBe(
      'import-diff into rbd/x: rbd exited with status 22: librbd: boom; rbd: import-diff failed: (22) Invalid argument',
    )
  })
})
