import { randomBytes } from 'node:crypto'
import * as fsp from 'node:fs/promises'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { FileArchive } from '../../lib/archives/file.js'
import { tempDir } from '../helpers/temp-dir.js'

/** A FileArchive in a fresh directory whose opening of key files is counted. */
async function counted (t: Test, readCacheSize?: number) {
  const dir = path.join(await tempDir(t), 'sessions')
  const opened: string[] = []
  const fs = { ...fsp, open: ((file: string, ...rest: unknown[]) => { if (file.endsWith('.json')) opened.push(path.basename(file)); return (fsp.open as (...args: unknown[]) => unknown)(file, ...rest) }) as typeof fsp.open }
  const archive = new FileArchive({ dir, sweepIntervalMs: 0, fs, ...(readCacheSize === undefined ? {} : { readCacheSize }) })
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

t.test('a write by this archive, or by another process, is read again', async (t) => {
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

  await elsewhere.removeDomain(id)
  t.equal(await archive.get(id, 'session'), undefined, 'a file removed elsewhere')
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
