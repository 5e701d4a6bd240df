import { execFile } from 'node:child_process'
import { cp, mkdir, readdir, symlink, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t, { type Test } from 'tap'
import { tempDir } from './helpers/temp-dir.js'

const root = fileURLToPath(new URL('..', import.meta.url))
const run = promisify(execFile)

// Type-checking fastify's declarations with them takes up to half a minute on a busy machine.
t.setTimeout(120_000)

/** A copy of the built package beside every dependency but ioredis. */
async function placeWithoutIoredis (t: Test): Promise<string> {
  const place = await tempDir(t)
  await cp(path.join(root, 'dist'), path.join(place, 'dist'), { recursive: true })
  await writeFile(path.join(place, 'package.json'), '{ "type": "module" }')
  await mkdir(path.join(place, 'node_modules'))
  for (const name of await readdir(path.join(root, 'node_modules'))) {
    if (name !== 'ioredis' && !name.startsWith('.')) await symlink(path.join(root, 'node_modules', name), path.join(place, 'node_modules', name))
  }
  return place
}

t.test('without ioredis installed, the package loads and RedisArchive({ url }) says what to install', async (t) => {
  const place = await placeWithoutIoredis(t)
  const script = `
    const { RedisArchive, MemoryArchive } = await import('./dist/index.js')
    new MemoryArchive()
    try {
      new RedisArchive({ url: 'redis://127.0.0.1:6379' })
      console.log('created')
    } catch (error) {
      console.log(error.code, error.message)
    }`
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: place })
  t.match(stdout.trim(), /^FST_SESSION_INVALID_OPTION .*npm install ioredis/)
})

t.test('without ioredis installed, a cookie-mode app type-checks: the declarations name nothing from ioredis', async (t) => {
  const place = await placeWithoutIoredis(t)
  await writeFile(path.join(place, 'app.ts'), [
    "import Fastify from 'fastify'",
    "import { fastifySessions, MemoryArchive } from './dist/index.js'",
    'const app = Fastify()',
    "app.register(fastifySessions, { secret: 'x'.repeat(32) })",
    "app.register(fastifySessions, { secret: 'x'.repeat(32), mode: 'archive', archive: new MemoryArchive() })",
    ''
  ].join('\n'))
  // skipLibCheck off: an import of a missing package in a .d.ts is then an error.
  const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc')
  const args = ['--noEmit', '--strict', '--exactOptionalPropertyTypes', '--module', 'nodenext', '--target', 'es2022', '--types', 'node', '--skipLibCheck', 'false', 'app.ts']
  const result = await run(process.execPath, [tsc, ...args], { cwd: place }).then(() => 'type-checks', (error: { stdout: string }) => error.stdout)
  t.equal(result, 'type-checks')
})
