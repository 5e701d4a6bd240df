import { randomBytes } from 'node:crypto'
import * as fsp from 'node:fs/promises'
import path from 'node:path'
import t, { type Test } from 'tap'
import { FileArchive, type FileArchiveFs } from '../../lib/archives/file.js'
import { advanceClock } from '../helpers/clock.js'
import { tempDir } from '../helpers/temp-dir.js'

// The archive trusts only what it made: a dir of its own user that no one
// else may write, and below it no link, no file of another user, no second
// name for a file. Whatever is planted there is never read, written through
// or removed, and nothing outside the dir is ever touched.

const NOBODY = 65534
const isRoot = process.getuid?.() === 0
const newDomain = (): string => randomBytes(16).toString('base64url')

async function archiveIn (t: Test, dir: string, fs?: FileArchiveFs): Promise<FileArchive> {
  const archive = new FileArchive({ dir, sweepIntervalMs: 0, ...(fs === undefined ? {} : { fs }) })
  t.teardown(() => archive.close())
  return archive
}

/** Every path under `dir` with its content (files) or target (links) and mtime: what must not change. */
async function snapshot (dir: string): Promise<string[]> {
  const entries = await fsp.readdir(dir, { recursive: true, withFileTypes: true })
  return await Promise.all(entries.map(async (entry) => {
    const file = path.join(entry.parentPath, entry.name)
    const stats = await fsp.lstat(file)
    const content = entry.isFile() ? await fsp.readFile(file, 'utf8') : entry.isSymbolicLink() ? await fsp.readlink(file) : ''
    return `${path.relative(dir, file)} ${stats.mode.toString(8)} ${stats.mtimeMs} ${content}`
  })).then((lines) => lines.sort())
}

t.test('a dir that group or others may write to is refused with FST_SESSION_ARCHIVE_DENIED, saying how to fix it', async (t) => {
  for (const mode of [0o777, 0o770, 0o702]) {
    const dir = path.join(await tempDir(t), 'sessions')
    await fsp.mkdir(dir)
    await fsp.chmod(dir, mode)
    const archive = await archiveIn(t, dir)
    const id = newDomain()
    const label = mode.toString(8)
    await t.rejects(archive.ready(), { code: 'FST_SESSION_ARCHIVE_DENIED', statusCode: 503, message: /chmod 700/ }, `${label}: ready()`)
    await t.rejects(archive.set(id, 'session', 'x'), { code: 'FST_SESSION_ARCHIVE_DENIED' }, `${label}: set`)
    await t.rejects(archive.get(id, 'session'), { code: 'FST_SESSION_ARCHIVE_DENIED' }, `${label}: get`)
    t.equal(await archive.sweep(), 0, `${label}: the sweep does nothing`)
    t.same(await fsp.readdir(dir), [], `${label}: nothing was written`)
    await fsp.chmod(dir, 0o700)
    await archive.set(id, 'session', 'x')
    t.equal(await archive.get(id, 'session'), 'x', `${label}: once closed to others, it is used`)
  }
})

t.test('a dir that belongs to another user is refused', async (t) => {
  let dir: string
  if (isRoot) {
    dir = path.join(await tempDir(t), 'sessions')
    await fsp.mkdir(dir, { mode: 0o700 })
    await fsp.chown(dir, NOBODY, NOBODY)
  } else {
    // An ordinary user cannot give a directory away; root's own /usr is one that is not theirs.
    dir = '/usr'
    t.equal((await fsp.stat(dir)).uid, 0)
  }
  const archive = await archiveIn(t, dir)
  await t.rejects(archive.ready(), { code: 'FST_SESSION_ARCHIVE_DENIED', message: /chown/ })
  await t.rejects(archive.get(newDomain(), 'session'), { code: 'FST_SESSION_ARCHIVE_DENIED' })
  await t.rejects(archive.hasDomain(newDomain()), { code: 'FST_SESSION_ARCHIVE_DENIED' })
})

t.test('directories the archive creates on the way to its dir are checked too', async (t) => {
  const root = await tempDir(t)
  const dir = path.join(root, 'a', 'b', 'sessions')
  // A directory made on the way that ends up open to others (a umask of 0): refused.
  const fs = {
    ...fsp,
    mkdir: (async (target: string, options: Parameters<typeof fsp.mkdir>[1]) => {
      const made = await fsp.mkdir(target, options)
      await fsp.chmod(path.join(root, 'a'), 0o777)
      return made
    }) as FileArchiveFs['mkdir']
  }
  const archive = await archiveIn(t, dir, fs as FileArchiveFs)
  await t.rejects(archive.ready(), { code: 'FST_SESSION_ARCHIVE_DENIED' })
  const fine = await archiveIn(t, path.join(root, 'c', 'd', 'sessions'))
  await fine.ready()
  for (const made of ['c', 'c/d', 'c/d/sessions']) t.equal((await fsp.stat(path.join(root, made))).mode & 0o777, 0o700, `${made} is 0700`)
})

t.test('ready() creates the dir 0700 and checks it can write there, else says why', async (t) => {
  const root = await tempDir(t)
  const dir = path.join(root, 'sessions')
  const archive = await archiveIn(t, dir)
  await archive.ready()
  t.equal((await fsp.stat(dir)).mode & 0o777, 0o700)
  t.same(await fsp.readdir(dir), [], 'and leaves nothing there')
  await archive.ready()

  await fsp.writeFile(path.join(root, 'file'), 'not a directory')
  await t.rejects((await archiveIn(t, path.join(root, 'file'))).ready(), { code: 'FST_SESSION_ARCHIVE_IO' })
  const full = { ...fsp, writeFile: async () => { throw Object.assign(new Error('ENOSPC'), { code: 'ENOSPC' }) } }
  await t.rejects((await archiveIn(t, path.join(root, 'other'), full as unknown as FileArchiveFs)).ready(), { code: 'FST_SESSION_ARCHIVE_FULL' })
})

t.test('a planted hard link, or a session.json of another user, is not read', async (t) => {
  const root = await tempDir(t)
  const dir = path.join(root, 'sessions')
  const archive = await archiveIn(t, dir)
  const [linked, foreign] = [newDomain(), newDomain()]
  await archive.set(linked, 'session', 'mine')
  await archive.set(foreign, 'session', 'mine')
  t.equal(await archive.get(linked, 'session'), 'mine', 'read once, so it is remembered')

  await fsp.link(path.join(dir, linked, 'session.json'), path.join(root, 'second-name'))
  t.equal(await archive.get(linked, 'session'), undefined, 'a file with a second name is not read, even when remembered')
  t.equal(await archive.hasDomain(linked), false)
  await archive.set(linked, 'session', 'replaced')
  t.equal(await archive.get(linked, 'session'), 'replaced', 'a write replaces the name, not the linked file')
  t.equal(await fsp.readFile(path.join(root, 'second-name'), 'utf8'), 'mine')

  if (isRoot) {
    await fsp.chown(path.join(dir, foreign, 'session.json'), NOBODY, NOBODY)
    t.equal(await archive.get(foreign, 'session'), undefined, 'a file of another user is not read')
    t.equal(await archive.hasDomain(foreign), false)
  } else {
    await t.rejects(fsp.chown(path.join(dir, foreign, 'session.json'), 0, 0), { code: 'EPERM' },
      'an ordinary user cannot plant a file of another user: the check is exercised when run as root')
  }
})

t.test('a domain directory of another user, or open to others, is neither read nor written', async (t) => {
  const dir = path.join(await tempDir(t), 'sessions')
  const archive = await archiveIn(t, dir)
  const id = newDomain()
  await archive.set(id, 'session', 'x')
  await fsp.chmod(path.join(dir, id), 0o777)
  t.equal(await new FileArchive({ dir, sweepIntervalMs: 0, readCacheSize: 0 }).get(id, 'session'), undefined, 'not read')
  t.equal(await archive.hasDomain(id), false)
  await t.rejects(archive.set(id, 'session', 'y'), { code: 'FST_SESSION_ARCHIVE_DENIED' }, 'not written')
  t.equal(await archive.compareAndSet(id, 'session', 'x', 'y'), false)
  await archive.removeDomain(id)
  advanceClock(t, 3_600_000 * 24 * 365 * 1000)
  t.equal(await archive.sweep(), 0, 'not swept')
  t.equal(await fsp.readFile(path.join(dir, id, 'session.json'), 'utf8'), 'x', 'and left as it was')
})

t.test('a domain swapped for a link while writes, reads, removals and sweeps run never touches anything outside the dir', async (t) => {
  const root = await tempDir(t)
  const dir = path.join(root, 'sessions')
  const canary = path.join(root, 'canary')
  await fsp.mkdir(canary)
  // What a sweep or removal that followed the link would delete, and what a write would replace.
  const past = new Date(Date.now() - 3_600_000)
  for (const name of ['session.json', 'other.json', '.session.0123456789abcdef.tmp']) {
    await fsp.writeFile(path.join(canary, name), `canary ${name}`)
    await fsp.utimes(path.join(canary, name), past, past)
  }
  const before = await snapshot(canary)
  const archive = await archiveIn(t, dir)
  const ids = [newDomain(), newDomain(), newDomain()]
  for (const id of ids) await archive.set(id, 'session', 'v', 60_000)

  const race = { running: true }
  let swaps = 0
  const swapper = (async () => {
    while (race.running) {
      for (const id of ids) {
        const domainDir = path.join(dir, id)
        const aside = path.join(dir, `aside-${id}`)
        await fsp.rename(domainDir, aside).catch(() => {})
        await fsp.symlink(canary, domainDir).catch(() => {})
        await new Promise((resolve) => setImmediate(resolve))
        await fsp.unlink(domainDir).catch(() => {})
        await fsp.rename(aside, domainDir).catch(() => {})
        swaps++
      }
    }
  })()
  const outcomes = { ok: 0, failed: 0 }
  const count = (promise: Promise<unknown>) => promise.then(() => { outcomes.ok++ }, () => { outcomes.failed++ })
  for (let round = 0; round < 150; round++) {
    const id = ids[round % ids.length]!
    await Promise.all([
      count(archive.set(id, 'session', `round ${round}`, round % 2 === 0 ? 60_000 : 1)),
      count(archive.get(id, 'session')),
      count(archive.compareAndSet(id, 'session', undefined, 'new')),
      count(archive.hasDomain(id)),
      count(round % 10 === 0 ? archive.removeDomain(id) : archive.remove(id, 'other')),
      count(archive.sweep())
    ])
  }
  race.running = false
  await swapper
  t.comment(`${swaps} swaps; ${outcomes.ok} calls succeeded, ${outcomes.failed} were refused`)
  t.same(await snapshot(canary), before, 'nothing outside the dir was written, created or deleted')
  t.same((await fsp.readdir(root)).sort(), ['canary', 'sessions'], 'nor anything created beside it')
})

t.test('a domain swapped for something else between its check and its removal is put back, not removed', async (t) => {
  const root = await tempDir(t)
  const dir = path.join(root, 'sessions')
  const id = newDomain()
  const planted = path.join(root, 'planted')
  await fsp.mkdir(planted, { mode: 0o700 })
  await fsp.writeFile(path.join(planted, 'session.json'), 'planted')
  const fs = {
    ...fsp,
    rename: (async (from: string, to: string) => {
      if (path.basename(to).startsWith('.removed.') && from === path.join(dir, id)) {
        await fsp.rename(from, path.join(root, 'checked'))
        await fsp.rename(planted, from)
      }
      return await fsp.rename(from, to)
    }) as FileArchiveFs['rename']
  }
  const archive = await archiveIn(t, dir, fs as FileArchiveFs)
  await archive.set(id, 'session', 'mine')
  await archive.removeDomain(id)
  t.equal(await fsp.readFile(path.join(dir, id, 'session.json'), 'utf8'), 'planted', 'what was swapped in is left where it was')
  t.same((await fsp.readdir(dir)).filter((name) => name.startsWith('.removed.')), [])
})

t.test('a domain swapped for another directory after its last key is removed is left alone', async (t) => {
  const root = await tempDir(t)
  const dir = path.join(root, 'sessions')
  const id = newDomain()
  const fs = {
    ...fsp,
    unlink: (async (file: string) => {
      await fsp.unlink(file)
      if (!file.endsWith('session.json')) return
      // The emptied domain goes aside, and a directory that holds something else takes its name.
      await fsp.rename(path.join(dir, id), path.join(root, 'emptied'))
      await fsp.mkdir(path.join(dir, id), { mode: 0o700 })
      await fsp.writeFile(path.join(dir, id, 'notes.txt'), 'not the archive\'s')
    }) as FileArchiveFs['unlink']
  }
  const archive = await archiveIn(t, dir, fs as FileArchiveFs)
  await archive.set(id, 'session', 'mine')
  await archive.remove(id, 'session')
  t.same(await fsp.readdir(path.join(dir, id)), ['notes.txt'], 'the directory that took its name stays')
  t.same(await fsp.readdir(path.join(root, 'emptied')), [], 'the emptied domain is where it was moved')
})

t.test('a dir that cannot be examined, or a domain that fails as it is opened, is an archive error', async (t) => {
  const root = await tempDir(t)
  const failing = { stat: '', reopen: '', fstat: false }
  const fs = {
    ...fsp,
    stat: (async (target: string) => {
      if (failing.stat !== '') throw Object.assign(new Error(failing.stat), { code: failing.stat })
      return await fsp.stat(target)
    }) as FileArchiveFs['stat'],
    mkdir: (async (target: string, options: Parameters<typeof fsp.mkdir>[1]) => {
      const made = await fsp.mkdir(target, options)
      if (failing.reopen !== '') failing.stat = failing.reopen
      return made
    }) as FileArchiveFs['mkdir'],
    open: (async (file: string, flags: number, mode?: number) => {
      if (failing.stat !== '' && (flags & fsp.constants.O_DIRECTORY) !== 0) throw Object.assign(new Error(failing.stat), { code: failing.stat })
      const handle = await fsp.open(file, flags, mode)
      if (!failing.fstat || (flags & fsp.constants.O_DIRECTORY) === 0) return handle
      return Object.assign(Object.create(handle) as typeof handle, {
        stat: async () => { throw Object.assign(new Error('EIO'), { code: 'EIO' }) },
        close: () => handle.close()
      })
    }) as FileArchiveFs['open']
  }
  failing.stat = 'EACCES'
  await t.rejects((await archiveIn(t, path.join(root, 'a'), fs as FileArchiveFs)).get(newDomain(), 'session'), { code: 'FST_SESSION_ARCHIVE_DENIED' }, 'the dir cannot be examined')
  failing.stat = ''
  const archive = await archiveIn(t, path.join(root, 'b'), fs as FileArchiveFs)
  await archive.ready()
  failing.reopen = 'EIO'
  await t.rejects(archive.set(newDomain(), 'session', 'x'), { code: 'FST_SESSION_ARCHIVE_IO' }, 'a domain just made cannot be opened')
  Object.assign(failing, { stat: '', reopen: '', fstat: true })
  await t.rejects(archive.set(newDomain(), 'session', 'x'), { code: 'FST_SESSION_ARCHIVE_IO' }, 'a domain opened cannot be examined')
})
