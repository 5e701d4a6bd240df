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

/** A fresh temp directory made the working directory until the test ends, for what the plugin keeps under it by default. */
export async function inPlace (t: Test): Promise<string> {
  const cwd = process.cwd()
  const place = await tempDir(t)
  process.chdir(place)
  t.teardown(() => process.chdir(cwd))
  return place
}
