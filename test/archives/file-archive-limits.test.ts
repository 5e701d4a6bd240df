import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import * as fsp from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { FileArchive, type FileArchiveFs, type FileArchiveOptions } from '../../lib/archives/file.js'
import { tempDir } from '../helpers/temp-dir.js'

// Limits as lib/archives/archive.ts writes them: a domain is new from the
// write that creates it until a get finds it; new ones have a quota and make
// room for each other, oldest first; established ones are never removed to
// make room, and when they fill the archive a new domain is refused.

const root = fileURLToPath(new URL('../..', import.meta.url))
const entry = new URL('../../dist/archives/file.js', import.meta.url).href
const DOMAIN = /^[A-Za-z0-9_-]{8,128}$/
const newDomain = (): string => randomBytes(16).toString('base64url')

async function setup (t: Test, options: FileArchiveOptions = {}) {
  const dir = options.dir ?? path.join(await tempDir(t), 'sessions')
  const archive = new FileArchive({ dir, sweepIntervalMs: 0, ...options })
  t.teardown(() => archive.close())
  await archive.ready()
  return { dir, archive }
}

/** The domains on disk. */
async function stored (dir: string): Promise<string[]> {
  return (await fsp.readdir(dir)).filter((name) => DOMAIN.test(name)).sort()
}

/** Creates and then reads a domain, which makes it established. */
async function established (archive: FileArchive, value = 'kept'): Promise<string> {
  const id = newDomain()
  await archive.set(id, 'session', value)
  await archive.get(id, 'session')
  return id
}

t.test('limits are options checked when the archive is made', async (t) => {
  for (const options of [
    { maxSessions: 0 }, { maxSessions: 1.5 }, { maxNewSessions: 0 }, { maxSessions: 10, maxNewSessions: 11 },
    { readCacheBytes: -1 }, { readCacheBytes: 0.5 }, { readCacheMaxValueBytes: -1 }, { readCacheSize: -1 }
  ]) {
    t.throws(() => new FileArchive(options), { code: 'FST_SESSION_INVALID_OPTION' }, JSON.stringify(options))
  }
})

t.test('a new domain beyond maxNewSessions first removes the oldest new one; an established one stays', async (t) => {
  const { dir, archive } = await setup(t, { maxSessions: 100, maxNewSessions: 2 })
  const kept = await established(archive)
  const [first, second, third] = [newDomain(), newDomain(), newDomain()]
  await archive.set(first, 'session', '1')
  t.equal(await archive.compareAndSet(second, 'session', undefined, '2'), true)
  await archive.set(third, 'session', '3')
  t.same(await stored(dir), [kept, second, third].sort(), 'the oldest new domain made room')
  t.equal(await archive.get(first, 'session'), undefined)
  await archive.set(second, 'session', 'written again')
  t.same(await stored(dir), [kept, second, third].sort(), 'writing a stored domain creates nothing')
})

t.test('maxNewSessions is a tenth of maxSessions by default', async (t) => {
  const { dir, archive } = await setup(t, { maxSessions: 30 })
  const ids = Array.from({ length: 4 }, newDomain)
  for (const id of ids) await archive.set(id, 'session', 'x')
  t.same(await stored(dir), ids.slice(1).sort(), 'three new domains are kept, the fourth removed the first')
})

t.test('a new domain beyond maxSessions removes the oldest new one; only established ones left: FST_SESSION_ARCHIVE_AT_CAPACITY', async (t) => {
  const { dir, archive } = await setup(t, { maxSessions: 3, maxNewSessions: 3 })
  const [one, two] = [await established(archive), await established(archive)]
  const fresh = newDomain()
  await archive.set(fresh, 'session', 'new')
  const fresher = newDomain()
  await archive.set(fresher, 'session', 'newer')
  t.same(await stored(dir), [one, two, fresher].sort(), 'the new domain made room for a newer one')
  await archive.get(fresher, 'session')

  const refused = newDomain()
  await t.rejects(archive.set(refused, 'session', 'x'), { code: 'FST_SESSION_ARCHIVE_AT_CAPACITY', statusCode: 503 })
  await t.rejects(archive.compareAndSet(refused, 'session', undefined, 'x'), { code: 'FST_SESSION_ARCHIVE_AT_CAPACITY' })
  t.same(await stored(dir), [one, two, fresher].sort(), 'no established domain was removed, nothing created')
  await archive.set(one, 'session', 'still written')
  await archive.set(two, 'other', 'a new key of a stored domain')
  t.equal(await archive.get(one, 'session'), 'still written', 'stored domains are still written')

  await archive.removeDomain(two)
  await archive.set(refused, 'session', 'x')
  t.equal(await archive.get(refused, 'session'), 'x', 'once there is room, a new domain is stored')
})

t.test('a domain is marked new on disk until a get finds it, which costs one fchmod once', async (t) => {
  const dir = path.join(await tempDir(t), 'sessions')
  const calls = { chmod: 0, lstat: 0, fstat: 0 }
  const fs: FileArchiveFs = {
    ...fsp,
    lstat: ((...args: Parameters<typeof fsp.lstat>) => { calls.lstat++; return fsp.lstat(...args) }) as FileArchiveFs['lstat'],
    open: (async (...args: Parameters<typeof fsp.open>) => {
      const handle = await fsp.open(...args)
      return Object.assign(Object.create(handle) as typeof handle, {
        chmod: (mode: number) => { calls.chmod++; return handle.chmod(mode) },
        stat: () => { calls.fstat++; return handle.stat() },
        close: () => handle.close()
      })
    }) as FileArchiveFs['open']
  }
  const { archive } = await setup(t, { dir, fs })
  const id = newDomain()
  await archive.compareAndSet(id, 'session', undefined, 'v')
  const mode = async () => (await fsp.stat(path.join(dir, id))).mode & 0o7777
  t.equal(await mode(), 0o1700, 'a new domain carries the sticky bit')
  t.equal(await archive.compareAndSet(id, 'session', 'v', 'w'), true)
  t.equal(await mode(), 0o1700, 'writes leave it new')
  t.equal(await archive.get(id, 'session'), 'w')
  t.equal(await mode(), 0o700, 'found by a get, it is established')
  t.equal(calls.chmod, 1, 'with one fchmod')
  Object.assign(calls, { chmod: 0, lstat: 0, fstat: 0 })
  t.equal(await archive.get(id, 'session'), 'w')
  t.same(calls, { chmod: 0, lstat: 0, fstat: 1 }, 'a hot read of an established session is one fstat of the file it holds open')
  const cold = new FileArchive({ dir, sweepIntervalMs: 0, fs })
  t.teardown(() => cold.close())
  t.equal(await cold.get(id, 'session'), 'w')
  t.equal(calls.chmod, 0, 'a cold read of an established session marks nothing')
})

t.test('a domain another process found is not removed to make room', async (t) => {
  const { dir, archive } = await setup(t, { maxSessions: 100, maxNewSessions: 1 })
  const other = new FileArchive({ dir, sweepIntervalMs: 0 })
  const [found, busy] = [newDomain(), newDomain()]
  await archive.set(found, 'session', 'x')
  t.equal(await other.get(found, 'session'), 'x', 'found through another archive on the dir')
  const next = newDomain()
  await archive.set(next, 'session', 'y')
  t.same(await stored(dir), [found, next].sort(), 'the domain found elsewhere is kept')

  // A new domain that someone holds while room is made is skipped, not waited for.
  await fsp.writeFile(path.join(dir, `.${next}.lock`), `${process.ppid} 0123456789abcdef ${Date.now()} ${os.hostname()}`)
  await archive.set(busy, 'session', 'z')
  t.same(await stored(dir), [found, next, busy].sort())
  await fsp.unlink(path.join(dir, `.${next}.lock`))

  // A new domain removed elsewhere before room is made: nothing to remove.
  await other.removeDomain(busy)
  await archive.set(newDomain(), 'session', 'w')
  t.equal((await stored(dir)).length, 3)
})

t.test('where the file system does not count subdirectories, the sweep counts domains', async (t) => {
  const dir = path.join(await tempDir(t), 'sessions')
  const fs: FileArchiveFs = {
    ...fsp,
    lstat: (async (target: string) => {
      const stats = await fsp.lstat(target)
      // btrfs gives a directory one link whatever it holds.
      return target === dir ? Object.assign(stats, { nlink: 1 }) : stats
    }) as FileArchiveFs['lstat']
  }
  const { archive } = await setup(t, { dir, fs, maxSessions: 2, maxNewSessions: 2 })
  const one = await established(archive)
  await established(archive)
  await t.rejects(archive.set(newDomain(), 'session', 'x'), { code: 'FST_SESSION_ARCHIVE_AT_CAPACITY' }, 'its own domains are counted')
  await archive.removeDomain(one)
  const elsewhere = new FileArchive({ dir, sweepIntervalMs: 0 })
  const theirs = newDomain()
  await elsewhere.set(theirs, 'session', 'x')
  await elsewhere.get(theirs, 'session')
  const expired = newDomain()
  await elsewhere.set(expired, 'session', 'x', 60_000)
  const past = new Date(Date.now() - 1000)
  await fsp.utimes(path.join(dir, expired, 'session.json'), past, past)
  t.equal(await archive.sweep(), 1)
  await t.rejects(archive.set(newDomain(), 'session', 'x'), { code: 'FST_SESSION_ARCHIVE_AT_CAPACITY' }, 'the sweep counted the domain of the other process, not the one it removed')
})

t.test('the sweep learns which domains are new, so other processes\' new ones make room too', async (t) => {
  const { dir, archive } = await setup(t, { maxSessions: 3, maxNewSessions: 3 })
  const elsewhere = new FileArchive({ dir, sweepIntervalMs: 0 })
  const theirs = newDomain()
  await elsewhere.set(theirs, 'session', 'new, made elsewhere')
  const mine = await established(archive)
  const foundElsewhere = newDomain()
  await archive.set(foundElsewhere, 'session', 'x')
  await elsewhere.get(foundElsewhere, 'session')
  await archive.sweep()
  await archive.set(newDomain(), 'session', 'x')
  t.same((await stored(dir)).includes(theirs), false, 'the other process\'s new domain made room')
  t.ok((await stored(dir)).includes(mine) && (await stored(dir)).includes(foundElsewhere), 'established ones stay')
})

t.test('a flood of new domains from a cookieless loop stays under maxSessions and loses no established domain', async (t) => {
  const maxSessions = 200
  const { dir, archive } = await setup(t, { maxSessions, maxNewSessions: maxSessions })
  const kept = [] as string[]
  for (let i = 0; i < 5; i++) kept.push(await established(archive, `kept ${i}`))
  let most = 0
  for (let round = 0; round < 2000; round++) {
    await archive.compareAndSet(newDomain(), 'session', undefined, '{"d":{}}', 60_000)
    if (round % 250 === 0) {
      most = Math.max(most, (await stored(dir)).length)
      for (const [i, id] of kept.entries()) t.equal(await archive.get(id, 'session'), `kept ${i}`)
    }
  }
  most = Math.max(most, (await stored(dir)).length)
  t.ok(most <= maxSessions, `at most ${most} domains were stored at once`)
  t.equal((await stored(dir)).length, maxSessions, 'the established ones and the newest new ones fill it')
  for (const [i, id] of kept.entries()) t.equal(await archive.get(id, 'session'), `kept ${i}`, 'no established domain was lost')
})

// A flood from another process: new domains as fast as it can make them.
const flooder = `
import { FileArchive } from ${JSON.stringify(entry)}
import { randomBytes } from 'node:crypto'
const [dir, count, maxSessions] = process.argv.slice(1)
const archive = new FileArchive({ dir, sweepIntervalMs: 0, maxSessions: Number(maxSessions), maxNewSessions: Number(maxSessions) })
for (let i = 0; i < Number(count); i++) await archive.compareAndSet(randomBytes(16).toString('base64url'), 'session', undefined, 'x')
`

t.test('two processes flooding one dir: storage stays within maxSessions, established domains stay', async (t) => {
  const maxSessions = 60
  const { dir, archive } = await setup(t, { maxSessions, maxNewSessions: maxSessions })
  const kept = [] as string[]
  for (let i = 0; i < 5; i++) kept.push(await established(archive, `kept ${i}`))
  const children = [0, 1].map(() => new Promise<number | null>((resolve) => {
    spawn(process.execPath, ['--input-type=module', '-e', flooder, dir, '800', String(maxSessions)], { cwd: root, stdio: 'inherit' })
      .on('close', (code) => resolve(code))
  }))
  const race = { running: true }
  const done = Promise.all(children).finally(() => { race.running = false })
  let most = 0
  while (race.running) {
    most = Math.max(most, (await stored(dir)).length)
    for (const id of kept) await archive.get(id, 'session')
  }
  t.same(await done, [0, 0], 'both floods ran to the end without an error')
  most = Math.max(most, (await stored(dir)).length)
  // Each creation counts the domains first (the dir's link count): two that
  // count at the same moment may both create, so two processes can pass the
  // limit by one each, never more.
  t.ok(most <= maxSessions + 2, `at most ${most} domains were stored at once, for a limit of ${maxSessions}`)
  for (const [i, id] of kept.entries()) t.equal(await archive.get(id, 'session'), `kept ${i}`, 'no established domain was lost')
})

t.test('the read cache keeps readCacheBytes of values at most, and never one over readCacheMaxValueBytes', async (t) => {
  const dir = path.join(await tempDir(t), 'sessions')
  const opened: string[] = []
  const fs: FileArchiveFs = {
    ...fsp,
    open: ((file: string, ...rest: unknown[]) => {
      if (file.endsWith('.json')) opened.push(file)
      return (fsp.open as (...args: unknown[]) => unknown)(file, ...rest)
    }) as FileArchiveFs['open']
  }
  const { archive } = await setup(t, { dir, fs, readCacheBytes: 100, readCacheMaxValueBytes: 50 })
  const [a, b, big] = [newDomain(), newDomain(), newDomain()]
  await archive.set(a, 'session', 'a'.repeat(40))
  await archive.set(b, 'session', 'b'.repeat(40))
  await archive.set(big, 'session', 'c'.repeat(60))
  await archive.get(a, 'session')
  await archive.get(b, 'session')
  opened.length = 0
  await archive.get(a, 'session')
  await archive.get(b, 'session')
  t.equal(opened.length, 0, 'two values of 40 bytes fit in 100')
  await archive.get(big, 'session')
  await archive.get(big, 'session')
  t.equal(opened.length, 2, 'a value of 60 bytes is never kept')
  const c = newDomain()
  await archive.set(c, 'session', 'd'.repeat(40))
  await archive.get(c, 'session')
  opened.length = 0
  await archive.get(b, 'session')
  await archive.get(c, 'session')
  await archive.get(a, 'session')
  t.equal(opened.length, 1, 'a third makes room by dropping the value read longest ago')
  const none = new FileArchive({ dir, sweepIntervalMs: 0, fs, readCacheBytes: 10 })
  t.teardown(() => none.close())
  opened.length = 0
  await none.get(a, 'session')
  await none.get(a, 'session')
  t.equal(opened.length, 2, 'a value larger than the whole budget is never kept')
})

t.test('at capacity with no new domain of its own, an archive looks for other processes\' new domains before refusing', async (t) => {
  const dir = path.join(await tempDir(t), 'sessions')
  const vanished = newDomain()
  const fs: FileArchiveFs = {
    ...fsp,
    lstat: (async (target: string) => {
      if (path.basename(target) === vanished) throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' })
      return await fsp.lstat(target)
    }) as FileArchiveFs['lstat']
  }
  const maxSessions = 70
  const { archive } = await setup(t, { dir, fs, maxSessions, maxNewSessions: maxSessions })
  const elsewhere = new FileArchive({ dir, sweepIntervalMs: 0, maxSessions, maxNewSessions: maxSessions })
  const kept = await established(elsewhere)
  await elsewhere.set(vanished, 'session', 'removed while it is looked at')
  await fsp.symlink(path.join(dir, kept), path.join(dir, newDomain()))
  const theirs = []
  for (let i = 0; i < maxSessions - 2; i++) {
    const id = newDomain()
    await elsewhere.set(id, 'session', 'new elsewhere')
    theirs.push(id)
  }
  const mine = newDomain()
  await archive.set(mine, 'session', 'mine')
  t.equal(await archive.get(mine, 'session'), 'mine', 'room was made among the other process\'s new domains')
  t.ok((await stored(dir)).length <= maxSessions + 1, 'within the limit (the planted link aside)')
  t.equal(await archive.get(kept, 'session'), 'kept', 'and the established domain stays')
})
