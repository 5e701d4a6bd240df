import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import type { Test } from 'tap'

/** A fresh directory under the system's temp dir, removed when the test ends. */
export async function tempDir (t: Test): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'fastify-sessions-'))
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }))
  return dir
}
