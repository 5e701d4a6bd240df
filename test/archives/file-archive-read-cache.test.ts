import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import * as fsp from 'node:fs/promises'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { FileArchive, openFileLimitOf } from '../../lib/archives/file.js'
import type { FileArchiveFs } from '../../lib/archives/file-system.js'
import { advanceClock } from '../helpers/clock.js'
import { tempDir } from '../helpers/temp-dir.js'

/** A FileArchive in a fresh directory whose opening of key files is counted. */
async function counted (t: Test, readCacheSize?: number) {
  const dir = path.join(await tempDir(t), 'sessions')
  const opened: string[] = []
  const fs = { ...fsp, open: ((file: string, ...rest: unknown[]) => { if (file.endsWith('.json')) opened.push(path.basename(file)); return (fsp.open as (...args: unknown[]) => unknown)(file, ...rest) }) as typeof fsp.open }
  const archive = new FileArchive({ dir, sweepIntervalMs: 0, fs, ...(readCacheSize === undefined ? {} : { readCacheSize }) })
  t.teardown(() => archive.close())
  return { dir, archive, opened }
}

const domain = (): string => randomBytes(16).toString('base64url')

t.test('a value read again from an unchanged file comes from memory', async (t) => {
  const { archive, opened } = await counted(t)
  const id = domain()
  await archive.set(id, 'session', '{"v":1}', 60_000)
  t.equal(await archive.get(id, 'session'), '{"v":1}')
  t.equal(await archive.get(id, 'session'), '{"v":1}')
  t.equal(await archive.get(id, 'session'), '{"v":1}')
  t.same(opened, ['session.json'], 'the file was opened once')
})

t.test('a write or removal by this archive, or by another process, is seen through the file held open', async (t) => {
  const { dir, archive } = await counted(t)
  const id = domain()
  await archive.set(id, 'session', 'one', 60_000)
  t.equal(await archive.get(id, 'session'), 'one')
  await archive.set(id, 'session', 'two', 60_000)
  t.equal(await archive.get(id, 'session'), 'two', 'its own write')

  const elsewhere = new FileArchive({ dir, sweepIntervalMs: 0 }) // another process: a cache of its own
  await elsewhere.set(id, 'session', 'three', 60_000)
  t.equal(await archive.get(id, 'session'), 'three', 'a write through another archive on the same directory')

  // A writer that replaces the file in place, keeping its size and expiry.
  const file = path.join(dir, id, 'session.json')
  const { mtime } = await fsp.lstat(file)
  await fsp.writeFile(file, 'THREE')
  await fsp.utimes(file, mtime, mtime)
  t.equal(await archive.get(id, 'session'), 'THREE', 'a file changed in place')

  await elsewhere.remove(id, 'session')
  t.equal(await archive.get(id, 'session'), undefined, 'a key removed elsewhere')
  await archive.set(id, 'session', 'four', 60_000)
  t.equal(await archive.get(id, 'session'), 'four')
  await elsewhere.removeDomain(id)
  t.equal(await archive.compareAndSet(id, 'session', 'four', 'late', 60_000), false, 'a compareAndSet does not find the kept value of a session removed elsewhere')
  t.equal(await archive.get(id, 'session'), undefined, 'a session removed elsewhere')
})

t.test('a remembered value past its expiry is not returned', async (t) => {
  const { archive } = await counted(t)
  const id = domain()
  await archive.set(id, 'session', 'brief', 50)
  t.equal(await archive.get(id, 'session'), 'brief')
  await sleep(120)
  t.equal(await archive.get(id, 'session'), undefined)
})

t.test('the cache keeps at most readCacheSize values; 0 keeps none', async (t) => {
  const small = await counted(t, 2)
  const ids = [domain(), domain(), domain()]
  for (const id of ids) await small.archive.set(id, 'session', id, 60_000)
  for (const id of ids) await small.archive.get(id, 'session')
  small.opened.length = 0
  t.equal(await small.archive.get(ids[1]!, 'session'), ids[1])
  t.equal(await small.archive.get(ids[2]!, 'session'), ids[2])
  t.equal(small.opened.length, 0, 'the two read last are remembered')
  t.equal(await small.archive.get(ids[0]!, 'session'), ids[0])
  t.equal(small.opened.length, 1, 'the first was dropped to make room')

  const none = await counted(t, 0)
  const id = domain()
  await none.archive.set(id, 'session', 'x', 60_000)
  await none.archive.get(id, 'session')
  await none.archive.get(id, 'session')
  t.equal(none.opened.length, 2)
})

t.test('a bad readCacheSize is FST_SESSION_INVALID_OPTION', async (t) => {
  t.throws(() => new FileArchive({ readCacheSize: -1 }), { code: 'FST_SESSION_INVALID_OPTION' })
  t.throws(() => new FileArchive({ readCacheSize: 1.5 }), { code: 'FST_SESSION_INVALID_OPTION' })
})

/** The files under `dir` that this process holds open. */
async function openUnder (dir: string): Promise<string[]> {
  const open: string[] = []
  for (const fd of await fsp.readdir('/proc/self/fd')) {
    const target = await fsp.readlink(`/proc/self/fd/${fd}`).catch(() => '')
    if (target.startsWith(`${dir}/`)) open.push(path.relative(dir, target))
  }
  return open.sort()
}

/** A FileArchive in a fresh directory whose `lstat` calls and `fstat` calls on key files are counted. */
async function checked (t: Test, options: { readCacheSize?: number, readCacheOpenFiles?: number } = {}) {
  const dir = path.join(await tempDir(t), 'sessions')
  const calls = { lstat: 0, fstat: 0 }
  const fs: FileArchiveFs = {
    ...fsp,
    lstat: ((file: string) => { if (file.endsWith('.json')) calls.lstat++; return fsp.lstat(file) }) as FileArchiveFs['lstat'],
    open: (async (file: string, ...rest: [number, number?]) => {
      const handle = await fsp.open(file, ...rest)
      if (!/\.json$|\.tmp$/.test(file)) return handle
      return Object.assign(Object.create(handle) as typeof handle, {
        stat: () => { calls.fstat++; return handle.stat() },
        close: () => handle.close()
      })
    }) as FileArchiveFs['open']
  }
  const archive = new FileArchive({ dir, sweepIntervalMs: 0, fs, ...options })
  t.teardown(() => archive.close())
  return { dir, archive, calls }
}

t.test('a kept value holds its file open: a hot read is one fstat, and no path is looked up', async (t) => {
  const { archive, calls } = await checked(t)
  const id = domain()
  await archive.set(id, 'session', 'one', 60_000)
  t.equal(await archive.get(id, 'session'), 'one')
  Object.assign(calls, { lstat: 0, fstat: 0 })
  t.equal(await archive.get(id, 'session'), 'one')
  t.equal(await archive.get(id, 'session'), 'one')
  t.same(calls, { lstat: 0, fstat: 2 })
})

t.test('readCacheOpenFiles bounds the files held open; the values beyond it are checked through their path', async (t) => {
  const { dir, archive, calls } = await checked(t, { readCacheOpenFiles: 2 })
  const ids = [domain(), domain(), domain()]
  for (const id of ids) await archive.set(id, 'session', id, 60_000)
  for (const id of ids) t.equal(await archive.get(id, 'session'), id)
  t.same(await openUnder(dir), [ids[1]!, ids[2]!].map((id) => `${id}/session.json`).sort(), 'the two kept last hold their file open')
  Object.assign(calls, { lstat: 0, fstat: 0 })
  for (const id of ids) t.equal(await archive.get(id, 'session'), id)
  t.same(calls, { lstat: 1, fstat: 2 }, 'the first is still kept, checked through its path')

  await new FileArchive({ dir, sweepIntervalMs: 0 }).set(ids[0]!, 'session', 'elsewhere', 60_000)
  t.equal(await archive.get(ids[0]!, 'session'), 'elsewhere', 'a value checked through its path sees another process\'s write')

  const none = await checked(t, { readCacheOpenFiles: 0 })
  const id = domain()
  await none.archive.set(id, 'session', 'x', 60_000)
  t.equal(await none.archive.get(id, 'session'), 'x')
  Object.assign(none.calls, { lstat: 0, fstat: 0 })
  t.equal(await none.archive.get(id, 'session'), 'x')
  t.same(none.calls, { lstat: 1, fstat: 0 }, '0 holds no file open')
  t.same(await openUnder(none.dir), [])
})

t.test('by default every kept value holds its file open, up to readCacheSize', async (t) => {
  const dir = path.join(await tempDir(t), 'sessions')
  const archive = new FileArchive({ dir, sweepIntervalMs: 0, readCacheSize: 3 })
  const ids = [domain(), domain(), domain(), domain()]
  for (const id of ids) await archive.set(id, 'session', id, 60_000)
  for (const id of ids) await archive.get(id, 'session')
  t.same(await openUnder(dir), ids.slice(1).map((id) => `${id}/session.json`).sort())
  await archive.close()
  t.same(await openUnder(dir), [], 'close() closes them')
})

t.test('a file held open is closed once its value is replaced, removed or forgotten', async (t) => {
  const dir = path.join(await tempDir(t), 'sessions')
  const archive = new FileArchive({ dir, sweepIntervalMs: 0 })
  t.teardown(() => archive.close())
  const [kept, removed, expiring] = [domain(), domain(), domain()]
  for (const id of [kept, removed]) {
    await archive.set(id, 'session', 'v1', 60_000)
    await archive.get(id, 'session')
  }
  t.same(await openUnder(dir), [`${kept}/session.json`, `${removed}/session.json`].sort())
  const before = (await fsp.stat(path.join(dir, kept, 'session.json'))).ino
  await archive.set(kept, 'session', 'v2', 60_000)
  t.equal((await fsp.stat(path.join(dir, kept, 'session.json'))).ino === before, false, 'a write is a new file')
  t.same(await openUnder(dir), [`${kept}/session.json`, `${removed}/session.json`].sort(), 'the new version is held open, the old one closed')
  t.equal(await archive.get(kept, 'session'), 'v2')

  await archive.removeDomain(removed)
  t.same(await openUnder(dir), [`${kept}/session.json`], 'a removed session holds no file')

  await archive.set(expiring, 'session', 'brief', 50)
  await archive.get(expiring, 'session')
  await sleep(120)
  t.equal(await archive.get(expiring, 'session'), undefined)
  t.same(await openUnder(dir), [`${kept}/session.json`], 'an expired value holds no file')
})

t.test('the limit of a file held open: a session directory moved away, not removed, is seen once its file is removed', async (t) => {
  const dir = path.join(await tempDir(t), 'sessions')
  const archive = new FileArchive({ dir, sweepIntervalMs: 0 })
  t.teardown(() => archive.close())
  const [byHand, halfRemoved] = [domain(), domain()]
  for (const id of [byHand, halfRemoved]) {
    await archive.set(id, 'session', 'v', 3_600_000)
    t.equal(await archive.get(id, 'session'), 'v')
  }
  const moved = path.join(dir, '..', 'moved')
  await fsp.rename(path.join(dir, byHand), moved)
  // What a removal killed between its rename and its delete leaves.
  await fsp.rename(path.join(dir, halfRemoved), path.join(dir, '.removed.0123456789abcdef'))
  for (const id of [byHand, halfRemoved]) {
    t.equal(await archive.get(id, 'session'), 'v', 'moved, its file still has its one name: the kept value is returned')
    t.equal(await new FileArchive({ dir, sweepIntervalMs: 0 }).get(id, 'session'), undefined, 'an archive that holds nothing open finds no session')
  }
  await fsp.rm(moved, { recursive: true })
  t.equal(await archive.get(byHand, 'session'), undefined, 'its file removed, it is gone')
  advanceClock(t, 61_000)
  await new FileArchive({ dir, sweepIntervalMs: 0 }).sweep()
  t.equal(await archive.get(halfRemoved, 'session'), undefined, 'the sweep removes what the removal left once it is a minute old, and it is gone')
})

// A process that may open 64 files: the archive holds 8 of them open by default.
const limited = `
import { readdirSync, readFileSync, readlinkSync } from 'node:fs'
import { FileArchive } from ${JSON.stringify(new URL('../../dist/archives/file.js', import.meta.url).href)}
const dir = process.argv[1]
const archive = new FileArchive({ dir, sweepIntervalMs: 0 })
for (let i = 0; i < 12; i++) {
  const id = 'session-' + i
  await archive.set(id, 'session', String(i), 60_000)
  if (await archive.get(id, 'session') !== String(i)) throw new Error('not read back')
}
const held = readdirSync('/proc/self/fd').filter((fd) => { try { return readlinkSync('/proc/self/fd/' + fd).startsWith(dir + '/') } catch { return false } })
const limit = /^Max open files +(\\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1]
console.log(JSON.stringify({ held: held.length, limit }))
`

t.test('by default an archive holds open an eighth of the files its process may open', async (t) => {
  const dir = path.join(await tempDir(t), 'sessions')
  const root = fileURLToPath(new URL('../..', import.meta.url))
  const output = await new Promise<string>((resolve, reject) => {
    let text = ''
    // `ulimit -n` sets the soft and the hard limit, so Node cannot raise it.
    const child = spawn('/bin/sh', ['-c', 'ulimit -n 64 && exec "$0" --input-type=module -e "$1" "$2"', process.execPath, limited, dir], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] })
    child.stdout.on('data', (chunk: Buffer) => { text += chunk.toString() })
    child.on('error', reject)
    child.on('close', (code) => { if (code === 0) resolve(text); else reject(new Error(`the child exited with ${code}`)) })
  })
  t.same(JSON.parse(output), { held: 8, limit: '64' })
})

t.test('how many files a process may open is read from /proc/self/limits', async (t) => {
  const limits = 'Limit                     Soft Limit           Hard Limit           Units     \n' +
    'Max processes             95181                95181                processes \n' +
    'Max open files            20000                20000                files     \n'
  t.equal(openFileLimitOf(limits), 20_000)
  t.equal(openFileLimitOf(limits.replace('20000                20000', 'unlimited            unlimited')), Infinity)
  t.equal(openFileLimitOf(undefined), 0, 'no such file: none held open')
  t.equal(openFileLimitOf('Max open files            many'), 0, 'a text it cannot read: none held open')
})

t.test('a bad readCacheOpenFiles is FST_SESSION_INVALID_OPTION', async (t) => {
  for (const readCacheOpenFiles of [-1, 1.5, '10', Infinity]) {
    t.throws(() => new FileArchive({ readCacheOpenFiles: readCacheOpenFiles as number }), { code: 'FST_SESSION_INVALID_OPTION', message: /readCacheOpenFiles/ })
  }
})
