import * as fsp from 'node:fs/promises'
import path from 'node:path'
import t from 'tap'
import { syncFileSystem } from '../../lib/archives/file-system.js'
import { tempDir } from '../helpers/temp-dir.js'

// FileArchive's default file system makes node:fs's synchronous calls behind
// the promise API of node:fs/promises: the same results, and the same errors
// as rejections, never as throws.

t.test('each call does what the node:fs/promises call of that name does', async (t) => {
  const dir = await tempDir(t)
  const file = path.join(dir, 'a.json')
  await syncFileSystem.writeFile(file, 'value', { flag: 'wx', mode: 0o600 })
  t.equal(await fsp.readFile(file, 'utf8'), 'value')
  await syncFileSystem.link(file, path.join(dir, 'b.json'))
  t.equal((await syncFileSystem.lstat(file)).nlink, 2, 'link gives the file a second name')
  t.equal((await syncFileSystem.stat(path.join(dir, 'b.json'))).ino, (await fsp.stat(file)).ino)
  await syncFileSystem.utimes(file, 1_000_000, 2_000_000)
  t.equal((await fsp.stat(file)).mtimeMs, 2_000_000_000, 'utimes sets the times, in seconds')
  await syncFileSystem.rename(path.join(dir, 'b.json'), path.join(dir, 'c.json'))
  await syncFileSystem.unlink(path.join(dir, 'c.json'))
  const made = await syncFileSystem.mkdir(path.join(dir, 'x', 'y'), { recursive: true, mode: 0o700 })
  t.equal(made, path.join(dir, 'x'), 'a recursive mkdir resolves the first directory it made')
  await syncFileSystem.rmdir(path.join(dir, 'x', 'y'))
  t.same((await syncFileSystem.readdir(dir)).sort(), ['a.json', 'x'])
  const names: string[] = []
  for await (const { name } of await syncFileSystem.opendir(dir, { bufferSize: 8 })) names.push(name)
  t.same(names.sort(), ['a.json', 'x'])
  await syncFileSystem.rm(path.join(dir, 'x'), { recursive: true, force: true })
  t.same(await fsp.readdir(dir), ['a.json'])
})

t.test('a handle reads, writes, changes the mode and times of, and closes the file it holds', async (t) => {
  const dir = await tempDir(t)
  const file = path.join(dir, 'held.json')
  const { O_WRONLY, O_CREAT, O_EXCL, O_RDONLY } = fsp.constants
  const writer = await syncFileSystem.open(file, O_WRONLY | O_CREAT | O_EXCL, 0o600)
  await writer.writeFile('{"a":1}')
  await writer.utimes(1_000, 2_000)
  await writer.chmod(0o640)
  const stats = await writer.stat()
  await writer.close()
  t.same([stats.size, stats.mtimeMs, stats.mode & 0o777], [7, 2_000_000, 0o640])
  const reader = await syncFileSystem.open(file, O_RDONLY)
  t.equal(await reader.readFile('utf8'), '{"a":1}')
  await reader.close()
})

t.test('a failed call rejects with the system error, code and syscall included', async (t) => {
  const dir = await tempDir(t)
  const missing = path.join(dir, 'missing')
  const calls: Array<Promise<unknown>> = [
    syncFileSystem.lstat(missing), syncFileSystem.open(missing, fsp.constants.O_RDONLY), syncFileSystem.unlink(missing),
    syncFileSystem.link(missing, path.join(dir, 'other'))
  ]
  for (const call of calls) await t.rejects(call, { code: 'ENOENT' })
  const error = await syncFileSystem.lstat(missing).then(() => undefined, (error: NodeJS.ErrnoException) => error)
  t.same([error?.code, error?.syscall], ['ENOENT', 'lstat'])
  const held = await syncFileSystem.open(dir, fsp.constants.O_RDONLY)
  await held.close()
  await t.rejects(held.close(), { code: 'EBADF' }, 'a handle closed once cannot be closed again')
})
