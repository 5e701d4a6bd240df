import { execFile } from 'node:child_process'
import { cp, mkdir, readdir, symlink, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t from 'tap'
import { tempDir } from './helpers/temp-dir.js'

const root = fileURLToPath(new URL('..', import.meta.url))

t.test('without ioredis installed, the package loads and RedisArchive({ url }) says what to install', async (t) => {
  // A copy of the built package beside every dependency but ioredis.
  const place = await tempDir(t)
  await cp(path.join(root, 'dist'), path.join(place, 'dist'), { recursive: true })
  await writeFile(path.join(place, 'package.json'), '{ "type": "module" }')
  await mkdir(path.join(place, 'node_modules'))
  for (const name of await readdir(path.join(root, 'node_modules'))) {
    if (name !== 'ioredis' && !name.startsWith('.')) await symlink(path.join(root, 'node_modules', name), path.join(place, 'node_modules', name))
  }
  const script = `
    const { RedisArchive, MemoryArchive } = await import('./dist/index.js')
    new MemoryArchive()
    try {
      new RedisArchive({ url: 'redis://127.0.0.1:6379' })
      console.log('created')
    } catch (error) {
      console.log(error.code, error.message)
    }`
  const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], { cwd: place })
  t.match(stdout.trim(), /^FST_SESSION_INVALID_OPTION .*npm install ioredis/)
})
