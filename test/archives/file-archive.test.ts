import { randomBytes } from 'node:crypto'
import * as fsp from 'node:fs/promises'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { FileArchive, type FileArchiveFs } from '../../lib/archives/file.js'
import { advanceClock } from '../helpers/clock.js'
import { tempDir } from '../helpers/temp-dir.js'
import { withoutHolders } from '../helpers/file-archive-files.js'
import { openWithTempFileFaults } from '../helpers/temp-file-faults.js'

const NO_EXPIRY_MS = Date.UTC(2400, 0, 1)

function newDomain (): string {
  return randomBytes(16).toString('base64url')
}

function systemError (code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: simulated failure`), { code })
}

interface Failure {
  message: string
  code?: string
  statusCode?: number
  cause?: { code?: string }
}

/** The error a promise rejects with; fails the test when it resolves. */
async function rejection (t: Test, promise: Promise<unknown>): Promise<Failure> {
  try {
    await promise
  } catch (error) {
    return error as Failure
  }
  t.fail('expected a rejection')
  return { message: 'resolved' }
}

/** A FileArchive in a fresh directory, with `fs` overrides applied over `node:fs/promises`. */
async function setup (t: Test, overrides: Partial<FileArchiveFs> = {}) {
  const root = await tempDir(t)
  const dir = path.join(root, 'sessions')
  const archive = new FileArchive({ dir, sweepIntervalMs: 0, fs: { ...fsp, ...overrides } })
  t.teardown(() => archive.close())
  return { root, dir, archive }
}

async function mode (file: string): Promise<number> {
  return (await fsp.lstat(file)).mode & 0o777
}

/** Whether this process can write into a directory whose mode forbids it (root can). */
async function permissionBitsBind (root: string): Promise<boolean> {
  const probe = path.join(root, 'probe')
  await fsp.mkdir(probe, { mode: 0o500 })
  try {
    await fsp.writeFile(path.join(probe, 'x'), '')
    return false
  } catch {
    return true
  }
}

t.test('a session is <dir>/<id>/session.json, readable JSON, directories 0700 and files 0600', async (t) => {
  const root = await tempDir(t)
  const dir = path.join(root, 'var', 'sessions')
  const archive = new FileArchive({ dir })
  t.teardown(() => archive.close())
  const id = newDomain()
  const session = { c: 1, t: 2, d: { user: { id: '42', name: 'Ada' } } }

  await archive.set(id, 'session', JSON.stringify(session))

  const file = path.join(dir, id, 'session.json')
  t.same(JSON.parse(await fsp.readFile(file, 'utf8')), session)
  t.equal(await mode(path.join(root, 'var')), 0o700, 'parents of the dir are created 0700')
  t.equal(await mode(dir), 0o700)
  t.equal(await mode(path.join(dir, id)), 0o700)
  t.equal(await mode(file), 0o600)
  t.same(withoutHolders(await fsp.readdir(dir)), [id])
  t.same(await fsp.readdir(path.join(dir, id)), ['session.json'], 'no temp file is left')
})

t.test('a key\'s expiry is its mtime; a key without ttl gets 2400-01-01', async (t) => {
  const { dir, archive } = await setup(t)
  const id = newDomain()
  await archive.set(id, 'kept', 'x')
  const before = Date.now()
  await archive.set(id, 'brief', 'y', 60_000)
  t.equal((await fsp.stat(path.join(dir, id, 'kept.json'))).mtimeMs, NO_EXPIRY_MS)
  const mtime = (await fsp.stat(path.join(dir, id, 'brief.json'))).mtimeMs
  // Seconds as a float lose a little below the millisecond on the way to the file system.
  t.ok(mtime > before + 60_000 - 1 && mtime < Date.now() + 60_000 + 1, 'now + ttl')
})

t.test('an expired file is not returned and is removed, with its emptied domain', async (t) => {
  const { dir, archive } = await setup(t)
  const id = newDomain()
  await archive.set(id, 'session', 'x', 60_000)
  const past = new Date(Date.now() - 1000)
  await fsp.utimes(path.join(dir, id, 'session.json'), past, past)

  t.equal(await archive.get(id, 'session'), undefined)
  await t.rejects(fsp.lstat(path.join(dir, id)), { code: 'ENOENT' })
})

t.test('names that are not safe path segments are refused before the disk is touched', async (t) => {
  const untouchable = Object.fromEntries(
    ['link', 'lstat', 'mkdir', 'open', 'opendir', 'readdir', 'rename', 'rm', 'rmdir', 'stat', 'unlink', 'utimes', 'writeFile'].map((name) => [
      name, async () => { throw new Error(`${name} was called`) }
    ])
  ) as unknown as FileArchiveFs
  const { archive } = await setup(t, untouchable)
  const good = newDomain()
  const badDomains = ['../x', 'a/b', '', 'x'.repeat(129), '..', 'short', `${good}/../..`, 'with space', 'dot.name', 'back\\slash', undefined]
  const badKeys = ['../x', 'a/b', '', 'x'.repeat(65), '.', 'session.json', 'nul\0byte']

  for (const domain of badDomains as string[]) {
    const calls = [
      archive.get(domain, 'session'), archive.set(domain, 'session', 'x'), archive.has(domain, 'session'),
      archive.remove(domain, 'session'), archive.hasDomain(domain), archive.removeDomain(domain)
    ]
    for (const call of calls) t.equal((await rejection(t, call)).code, 'FST_SESSION_ARCHIVE_INVALID_NAME', `domain ${JSON.stringify(domain)}`)
  }
  for (const key of badKeys) {
    const calls = [archive.get(good, key), archive.set(good, key, 'x'), archive.has(good, key), archive.remove(good, key)]
    for (const call of calls) t.equal((await rejection(t, call)).code, 'FST_SESSION_ARCHIVE_INVALID_NAME', `key ${JSON.stringify(key)}`)
  }
  t.equal((await rejection(t, archive.get(good, 'x'.repeat(65)))).message.includes('key'), true, 'the message names what was wrong')
})

t.test('a domain directory that is a symbolic link is neither read nor written', async (t) => {
  const { root, dir, archive } = await setup(t)
  const outside = path.join(root, 'outside')
  await fsp.mkdir(outside)
  await fsp.writeFile(path.join(outside, 'session.json'), '{"stolen":true}')
  const past = new Date(Date.now() - 1000)
  await fsp.writeFile(path.join(outside, 'old.json'), 'expired')
  await fsp.utimes(path.join(outside, 'old.json'), past, past)
  await fsp.mkdir(dir)
  const id = newDomain()
  await fsp.symlink(outside, path.join(dir, id))

  t.equal(await archive.get(id, 'session'), undefined)
  t.equal(await archive.has(id, 'session'), false)
  t.equal(await archive.hasDomain(id), false)
  const refused = await rejection(t, archive.set(id, 'session', '{"planted":true}'))
  t.equal(refused.code, 'FST_SESSION_ARCHIVE_IO')
  t.equal(refused.cause?.code, 'ENOTDIR')
  await archive.remove(id, 'session')
  await archive.removeDomain(id)
  t.equal(await archive.sweep(), 0)

  t.same((await fsp.readdir(outside)).sort(), ['old.json', 'session.json'], 'nothing was added or removed outside')
  t.equal(await fsp.readFile(path.join(outside, 'session.json'), 'utf8'), '{"stolen":true}')
  t.ok((await fsp.lstat(path.join(dir, id))).isSymbolicLink(), 'the link itself is left for the operator')
})

t.test('a domain path that is a regular file is absent and refuses writes', async (t) => {
  const { dir, archive } = await setup(t)
  const id = newDomain()
  await fsp.mkdir(dir)
  await fsp.writeFile(path.join(dir, id), 'not a directory')
  t.equal(await archive.get(id, 'session'), undefined)
  t.equal((await rejection(t, archive.set(id, 'session', 'x'))).code, 'FST_SESSION_ARCHIVE_IO')
  t.equal(await fsp.readFile(path.join(dir, id), 'utf8'), 'not a directory')
})

t.test('a session.json that is a symbolic link is not read, and a write replaces the link, not its target', async (t) => {
  const { root, dir, archive } = await setup(t)
  const id = newDomain()
  const target = path.join(root, 'secret.json')
  await fsp.writeFile(target, '{"secret":true}')
  await fsp.mkdir(path.join(dir, id), { recursive: true })
  await fsp.symlink(target, path.join(dir, id, 'session.json'))

  t.equal(await archive.get(id, 'session'), undefined)
  t.equal(await archive.has(id, 'session'), false)
  t.equal(await archive.hasDomain(id), false, 'a link is not a key')

  await archive.set(id, 'session', '{"mine":true}')
  t.equal(await fsp.readFile(target, 'utf8'), '{"secret":true}')
  t.equal(await archive.get(id, 'session'), '{"mine":true}')
  t.ok((await fsp.lstat(path.join(dir, id, 'session.json'))).isFile())
})

t.test('a key path that is a directory reads as absent', async (t) => {
  const { dir, archive } = await setup(t)
  const id = newDomain()
  await fsp.mkdir(path.join(dir, id, 'session.json'), { recursive: true })
  t.equal(await archive.get(id, 'session'), undefined)
})

t.test('removing a missing key of an existing domain keeps the domain', async (t) => {
  const { archive } = await setup(t)
  const id = newDomain()
  await archive.set(id, 'session', 'x')
  await archive.remove(id, 'other')
  t.equal(await archive.get(id, 'session'), 'x')
})

t.test('sweep removes expired keys, then emptied domains, and leaves everything else', async (t) => {
  const { dir, archive } = await setup(t)
  const [mixed, expired, live, linked] = [newDomain(), newDomain(), newDomain(), newDomain()]
  await archive.set(mixed, 'old', 'x', 60_000)
  await archive.set(mixed, 'new', 'y', 60_000)
  await archive.set(expired, 'a', 'x', 60_000)
  await archive.set(expired, 'b', 'x', 60_000)
  await archive.set(live, 'session', 'z')
  await fsp.writeFile(path.join(dir, live, 'notes.txt'), 'not a key')
  await fsp.mkdir(path.join(dir, live, 'dir.json'))
  await fsp.mkdir(path.join(dir, 'short'))
  await fsp.symlink(path.join(dir, expired), path.join(dir, linked))
  const past = new Date(Date.now() - 1000)
  for (const file of [[mixed, 'old'], [expired, 'a'], [expired, 'b']]) {
    await fsp.utimes(path.join(dir, ...file) + '.json', past, past)
  }

  t.equal(await archive.hasDomain(expired), false, 'expired keys do not keep a domain')
  t.equal(await archive.hasDomain(live), true)
  t.equal(await archive.sweep(), 3)
  t.same(await fsp.readdir(path.join(dir, mixed)), ['new.json'])
  await t.rejects(fsp.lstat(path.join(dir, expired)), { code: 'ENOENT' }, 'an emptied domain is removed')
  t.same((await fsp.readdir(path.join(dir, live))).sort(), ['dir.json', 'notes.txt', 'session.json'])
  t.ok((await fsp.lstat(path.join(dir, 'short'))).isDirectory(), 'what is not a domain is left alone')
  t.equal(await archive.sweep(), 0, 'a second sweep finds nothing')
})

t.test('sweep removes temp files of writes that died, once they are a minute old', async (t) => {
  const { dir, archive } = await setup(t)
  const id = newDomain()
  await fsp.mkdir(path.join(dir, id), { recursive: true })
  const temp = path.join(dir, id, '.session.0123456789abcdef.tmp')
  await fsp.writeFile(temp, 'half')

  t.equal(await archive.hasDomain(id), false, 'a temp file is not a key')
  t.equal(await archive.sweep(), 0)
  t.ok((await fsp.lstat(temp)).isFile(), 'a fresh temp file may belong to a write in progress')

  const now = Date.now
  Date.now = () => now() + 61_000
  t.teardown(() => { Date.now = now })
  t.equal(await archive.sweep(), 0, 'temp files are not counted as keys')
  await t.rejects(fsp.lstat(path.join(dir, id)), { code: 'ENOENT' })
})

t.test('sweep removes what a removal or a lock breaking that died left, once it is a minute old', async (t) => {
  const { dir, archive } = await setup(t)
  await archive.ready()
  const removed = path.join(dir, '.removed.0123456789abcdef')
  const broken = path.join(dir, `.${newDomain()}.lock.0123456789abcdef.broken`)
  await fsp.mkdir(removed)
  await fsp.writeFile(path.join(removed, 'session.json'), 'half removed')
  await fsp.writeFile(broken, '1 0123456789abcdef 0 elsewhere')
  await archive.sweep()
  t.same((await fsp.readdir(dir)).sort(), [path.basename(broken), path.basename(removed)].sort(), 'a fresh one may belong to a removal in progress')
  advanceClock(t, 61_000)
  await archive.sweep()
  t.same(await fsp.readdir(dir), [], 'a minute on, both are gone')
})

t.test('a failing sweep resolves, skips only what failed, and the next one runs', async (t) => {
  let failRoot = true
  const { dir, archive } = await setup(t, {
    opendir: (async (target: string, options: Parameters<typeof fsp.opendir>[1]) => {
      if (failRoot) throw systemError('EIO')
      return await fsp.opendir(target, options)
    }) as FileArchiveFs['opendir'],
    lstat: (async (target: string) => {
      if (target.endsWith('broken.json')) throw systemError('EIO')
      return await fsp.lstat(target)
    }) as FileArchiveFs['lstat']
  })
  const [broken, fine] = [newDomain(), newDomain()]
  await archive.set(broken, 'broken', 'x', 60_000)
  await archive.set(fine, 'session', 'x', 60_000)
  const past = new Date(Date.now() - 1000)
  await fsp.utimes(path.join(dir, broken, 'broken.json'), past, past)
  await fsp.utimes(path.join(dir, fine, 'session.json'), past, past)

  t.equal(await archive.sweep(), 0, 'an unreadable dir sweeps nothing')
  failRoot = false
  t.equal(await archive.sweep(), 1, 'the broken domain is skipped, the other swept')
  t.ok((await fsp.lstat(path.join(dir, broken, 'broken.json'))).isFile())
})

t.test('sweep of a dir that does not exist yet resolves to 0', async (t) => {
  const { archive } = await setup(t)
  t.equal(await archive.sweep(), 0)
})

t.test('a sweep asked for while one runs is that same sweep, and close waits for it', async (t) => {
  const { archive } = await setup(t)
  const first = archive.sweep()
  t.equal(archive.sweep(), first)
  await archive.close()
  t.not(archive.sweep(), first, 'a finished sweep is not reused')
})

t.test('the periodic sweep removes expired files until close', async (t) => {
  const root = await tempDir(t)
  const dir = path.join(root, 'sessions')
  const archive = new FileArchive({ dir, sweepIntervalMs: 10 })
  t.teardown(() => archive.close())
  const id = newDomain()
  await archive.set(id, 'session', 'x', 60_000)
  const file = path.join(dir, id, 'session.json')
  const past = new Date(Date.now() - 1000)
  await fsp.utimes(file, past, past)
  for (let waited = 0; waited < 5000 && await fsp.lstat(file).then(() => true, () => false); waited += 10) await sleep(10)
  await t.rejects(fsp.lstat(file), { code: 'ENOENT' }, 'swept without being read')

  await archive.close()
  await archive.set(id, 'session', 'x', 60_000)
  await fsp.utimes(file, past, past)
  await sleep(100)
  t.ok((await fsp.lstat(file)).isFile(), 'no sweep after close')
})

t.test('the default dir is .gen/sessions under the working directory', async (t) => {
  const root = await tempDir(t)
  const cwd = process.cwd()
  process.chdir(root)
  t.teardown(() => process.chdir(cwd))
  const archive = new FileArchive()
  t.teardown(() => archive.close())
  const id = newDomain()
  await archive.set(id, 'session', '{}')
  t.equal(await fsp.readFile(path.join(root, '.gen', 'sessions', id, 'session.json'), 'utf8'), '{}')
})

t.test('options are checked when the archive is made', async (t) => {
  for (const options of [{ dir: '' }, { sweepIntervalMs: -1 }, { sweepIntervalMs: 1.5 }, { sweepIntervalMs: 2 ** 31 }]) {
    t.throws(() => new FileArchive(options), { code: 'FST_SESSION_INVALID_OPTION' }, JSON.stringify(options))
  }
})

t.test('a failed write keeps the old value, leaves no temp file and says why', async (t) => {
  const expected = { ENOSPC: 'FULL', EDQUOT: 'FULL', EACCES: 'DENIED', EPERM: 'DENIED', EROFS: 'DENIED', EIO: 'IO' }
  for (const [code, kind] of Object.entries(expected)) {
    for (const step of ['writeFile', 'utimes', 'rename'] as const) {
      let fail = false
      const failure = (at: string) => fail && at === step ? systemError(code) : undefined
      const { dir, archive } = await setup(t, {
        open: openWithTempFileFaults(failure),
        rename: async (from: string, to: string) => {
          const error = failure('rename')
          if (error !== undefined) throw error
          await fsp.rename(from, to)
        }
      })
      const id = newDomain()
      await archive.set(id, 'session', 'old')
      fail = true

      const error = await rejection(t, archive.set(id, 'session', 'new'))
      t.equal(error.code, `FST_SESSION_ARCHIVE_${kind}`, `${code} in ${step}`)
      t.equal(error.cause?.code, code)
      t.equal(error.statusCode, 503)
      t.equal(await archive.get(id, 'session'), 'old')
      t.same(await fsp.readdir(path.join(dir, id)), ['session.json'], 'no temp file is left')
    }
  }
})

t.test('a write whose file cannot be looked at after the rename is stored, and read from the disk', async (t) => {
  let fail = false
  const { dir, archive } = await setup(t, { open: openWithTempFileFaults((step) => fail && step === 'stat' ? systemError('EIO') : undefined) })
  const id = newDomain()
  await archive.set(id, 'session', 'old')
  t.equal(await archive.get(id, 'session'), 'old', 'found: established')
  fail = true
  t.equal(await archive.compareAndSet(id, 'session', 'old', 'new'), true, 'the value went to its file')
  fail = false
  t.equal(await fsp.readFile(path.join(dir, id, 'session.json'), 'utf8'), 'new')
  t.equal(await archive.get(id, 'session'), 'new')
  t.same(await fsp.readdir(path.join(dir, id)), ['session.json'], 'no temp file is left')
})

t.test('a temp file name that is taken is not removed: it is not ours', async (t) => {
  let other = ''
  const { archive } = await setup(t, {
    open: (async (target: string, flags: number, mode?: number) => {
      if (!target.endsWith('.tmp')) return await fsp.open(target, flags, mode)
      await fsp.writeFile(target, 'another writer')
      other = await fsp.realpath(target)
      throw systemError('EEXIST')
    }) as FileArchiveFs['open']
  })
  t.equal((await rejection(t, archive.set(newDomain(), 'session', 'x'))).code, 'FST_SESSION_ARCHIVE_IO')
  t.equal(await fsp.readFile(other, 'utf8'), 'another writer')
})

t.test('a full disk when creating the domain is FST_SESSION_ARCHIVE_FULL', async (t) => {
  const { archive } = await setup(t, { mkdir: async () => { throw systemError('ENOSPC') } })
  t.equal((await rejection(t, archive.set(newDomain(), 'session', 'x'))).code, 'FST_SESSION_ARCHIVE_FULL')
})

t.test('failed reads and removals are errors, not absent sessions', async (t) => {
  let failing = ''
  let code = 'EIO'
  const fault = (name: string) => async (...args: unknown[]) => {
    if (failing === name) throw systemError(code)
    return await (fsp[name as 'open'] as (...args: unknown[]) => Promise<unknown>)(...args)
  }
  const { archive } = await setup(t, {
    open: fault('open') as FileArchiveFs['open'],
    readdir: fault('readdir') as FileArchiveFs['readdir'],
    unlink: fault('unlink') as FileArchiveFs['unlink'],
    rm: fault('rm') as FileArchiveFs['rm']
  })
  const id = newDomain()
  await archive.set(id, 'session', 'x')
  const cases: Array<[string, string, () => Promise<unknown>, string]> = [
    ['open', 'EIO', () => archive.get(id, 'session'), 'FST_SESSION_ARCHIVE_IO'],
    ['open', 'EIO', () => archive.has(id, 'session'), 'FST_SESSION_ARCHIVE_IO'],
    ['open', 'EACCES', () => archive.get(id, 'session'), 'FST_SESSION_ARCHIVE_DENIED'],
    ['open', 'EACCES', () => archive.set(id, 'session', 'y'), 'FST_SESSION_ARCHIVE_DENIED'],
    ['readdir', 'EIO', () => archive.hasDomain(id), 'FST_SESSION_ARCHIVE_IO'],
    ['unlink', 'EIO', () => archive.remove(id, 'session'), 'FST_SESSION_ARCHIVE_IO'],
    ['rm', 'EIO', () => archive.removeDomain(id), 'FST_SESSION_ARCHIVE_IO']
  ]
  for (const [name, failure, call, expected] of cases) {
    failing = name
    code = failure
    t.equal((await rejection(t, call())).code, expected, `${name} failing with ${failure}`)
  }
  failing = ''
  t.equal(await archive.get(id, 'session'), 'x', 'the session is still there')
})

t.test('a failure that is not an Error still becomes FST_SESSION_ARCHIVE_IO', async (t) => {
  const { archive } = await setup(t, {
    open: (async (file: string, ...rest: unknown[]) => {
      // eslint-disable-next-line no-throw-literal
      if (file.endsWith('.json')) throw 'disk on fire'
      return await (fsp.open as (...args: unknown[]) => Promise<unknown>)(file, ...rest)
    }) as FileArchiveFs['open']
  })
  const id = newDomain()
  await archive.set(id, 'session', 'x')
  const error = await rejection(t, archive.get(id, 'session'))
  t.equal(error.code, 'FST_SESSION_ARCHIVE_IO')
  t.equal(error.cause?.code, 'an unknown error')
  t.notMatch(error.message, /disk on fire/, 'what was thrown stays out of a message that may reach the client')
})

t.test('a read-only domain directory is FST_SESSION_ARCHIVE_DENIED where permission bits bind', async (t) => {
  const { root, dir, archive } = await setup(t)
  const id = newDomain()
  await archive.set(id, 'session', 'old')
  await fsp.chmod(path.join(dir, id), 0o500)
  t.teardown(() => fsp.chmod(path.join(dir, id), 0o700))

  if (await permissionBitsBind(root)) {
    const error = await rejection(t, archive.set(id, 'session', 'new'))
    t.equal(error.code, 'FST_SESSION_ARCHIVE_DENIED')
    t.equal(error.cause?.code, 'EACCES')
    t.equal(await archive.get(id, 'session'), 'old')
  } else {
    t.comment('running as a user that permission bits do not stop (root): EACCES is covered through the fs seam above')
    await archive.set(id, 'session', 'new')
    t.equal(await archive.get(id, 'session'), 'new', 'the mode of the directory does not confuse the archive')
    t.equal(await mode(path.join(dir, id)), 0o500, 'and it leaves the mode as it found it')
  }
  t.same(await fsp.readdir(path.join(dir, id)), ['session.json'], 'no temp file is left')
})

t.test('concurrent sets and a removeDomain leave a complete domain or none', async (t) => {
  const root = await tempDir(t)
  const dir = path.join(root, 'sessions')
  // Two archives on one dir in one process share the per-domain order.
  const archives = [new FileArchive({ dir, sweepIntervalMs: 0 }), new FileArchive({ dir, sweepIntervalMs: 0 })]
  const value = 'v'.repeat(20_000)
  for (let round = 0; round < 30; round++) {
    const id = newDomain()
    const calls: Array<() => Promise<unknown>> = []
    for (let i = 0; i < 6; i++) {
      const archive = archives[i % 2]!
      calls.push(() => archive.set(id, `key${i}`, value))
      if (i === round % 6) calls.push(() => archive.removeDomain(id))
    }
    await Promise.all(calls.map((call) => call()))
    const removedAt = round % 6
    const names = await fsp.readdir(path.join(dir, id)).catch(() => [] as string[])
    const survivors = Array.from({ length: 5 - removedAt }, (_, i) => `key${removedAt + 1 + i}.json`)
    t.same(names.sort(), survivors, `round ${round}: exactly the keys set after the removal`)
    for (const name of names) t.equal(await fsp.readFile(path.join(dir, id, name), 'utf8'), value)
    if (survivors.length === 0) t.equal(await archives[0]!.hasDomain(id), false, 'no domain is recreated half-way')
  }
})

t.test('a domain directory another process creates at the same moment is used, a link in its place refused', async (t) => {
  let racing: 'directory' | 'link' = 'directory'
  const { dir, archive } = await setup(t, {
    mkdir: (async (target: string, options: Parameters<typeof fsp.mkdir>[1]) => {
      if (path.dirname(target) !== dir) return fsp.mkdir(target, options)
      // Another writer makes the domain first: a real directory, or a link to one.
      if (racing === 'directory') await fsp.mkdir(target, options)
      else await fsp.symlink(await fsp.mkdtemp(path.join(path.dirname(dir), 'elsewhere-')), target)
      throw systemError('EEXIST')
    }) as FileArchiveFs['mkdir']
  })
  const id = newDomain()
  await archive.set(id, 'session', 'mine')
  t.equal(await archive.get(id, 'session'), 'mine')

  racing = 'link'
  const other = newDomain()
  const refused = await rejection(t, archive.set(other, 'session', 'mine'))
  t.equal(refused.code, 'FST_SESSION_ARCHIVE_IO')
  t.equal(refused.cause?.code, 'ENOTDIR')
})

t.test('a failure to create a domain directory is the archive error it maps to', async (t) => {
  const { dir, archive } = await setup(t, {
    mkdir: (async (target: string, options: Parameters<typeof fsp.mkdir>[1]) => {
      if (path.dirname(target) === dir) throw systemError('ENOSPC')
      return fsp.mkdir(target, options)
    }) as FileArchiveFs['mkdir']
  })
  const error = await rejection(t, archive.set(newDomain(), 'session', 'x'))
  t.equal(error.code, 'FST_SESSION_ARCHIVE_FULL')
})
