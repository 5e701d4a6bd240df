import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import * as fsp from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { FileArchive, type FileArchiveFs } from '../lib/archives/file.js'
import { advanceClock } from './helpers/clock.js'
import { tempDir } from './helpers/temp-dir.js'

// The lock that makes a domain's writes and removals atomic across processes
// is a name, <dir>/.<domain>.lock, holding "<pid> <incarnation> <since> <host>":
// this archive's own locks are hard links to a holder file of their process
// (<dir>/.<hex>.holder, saying "<pid> <incarnation> - <host>"), whose mtime is
// the time the lock was taken; a lock written by hand is judged the same way.
// What must hold: a holder killed with SIGKILL never blocks the others for
// long, a live holder is waited for, and a lock is only ever broken when its
// holder is gone or it is older than five seconds.

const root = fileURLToPath(new URL('..', import.meta.url))
const entry = new URL('../dist/archives/file.js', import.meta.url).href

const newDomain = (): string => randomBytes(16).toString('base64url')

function systemError (code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: simulated failure`), { code })
}

async function setup (t: Test, overrides: Partial<FileArchiveFs> = {}) {
  const dir = path.join(await tempDir(t), 'sessions')
  const archive = new FileArchive({ dir, sweepIntervalMs: 0, fs: { ...fsp, ...overrides } })
  t.teardown(() => archive.close())
  await archive.ready()
  return { dir, archive }
}

/** Resolves when `promise` settles, or says it is still pending after `ms`. */
async function settledWithin (promise: Promise<unknown>, ms: number): Promise<boolean> {
  let settled = false
  promise.then(() => { settled = true }, () => { settled = true })
  await sleep(ms)
  return settled
}

// A writer that stops forever just before renaming its value into place: it
// holds the domain's lock when it says HOLDING.
const holder = `
import * as fsp from 'node:fs/promises'
import { writeSync } from 'node:fs'
import { FileArchive } from ${JSON.stringify(entry)}
const [dir, id] = process.argv.slice(1)
const fs = { ...fsp, rename: (from, to) => to.endsWith('session.json') ? (writeSync(1, 'HOLDING\\n'), new Promise(() => {})) : fsp.rename(from, to) }
// Alive until killed: nothing else would keep the event loop running.
setInterval(() => {}, 60_000)
await new FileArchive({ dir, sweepIntervalMs: 0, fs }).set(id, 'session', 'from the killed process')
`

t.test('a process killed with SIGKILL while it holds a lock does not block the others', async (t) => {
  const { dir, archive } = await setup(t)
  const id = newDomain()
  await archive.set(id, 'session', 'before')
  const child = spawn(process.execPath, ['--input-type=module', '-e', holder, dir, id], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] })
  const exited = new Promise((resolve) => child.on('close', (_code, signal) => resolve(signal)))
  await new Promise<void>((resolve) => child.stdout.on('data', (chunk: Buffer) => { if (String(chunk).includes('HOLDING')) resolve() }))
  const lock = path.join(dir, `.${id}.lock`)
  t.match(await fsp.readFile(lock, 'utf8'), new RegExp(`^${child.pid} [0-9a-f]{16} - ${os.hostname()}$`), 'the child holds the lock')
  t.equal((await fsp.lstat(lock)).nlink, 2, 'a link to its holder file')
  child.kill('SIGKILL')
  t.equal(await exited, 'SIGKILL')

  const started = Date.now()
  await archive.set(id, 'session', 'after')
  t.comment(`the next write went through ${Date.now() - started} ms after the holder died`)
  t.equal(await archive.get(id, 'session'), 'after', 'the write after the kill is stored')
  await t.rejects(fsp.lstat(lock), { code: 'ENOENT' }, 'and its lock released')
  t.equal(await archive.compareAndSet(id, 'session', 'after', 'again'), true, 'later writes take the lock as usual')

  const names = await fsp.readdir(path.join(dir, id))
  t.equal(names.filter((name) => name.endsWith('.tmp')).length, 1, 'the killed write left its temp file')
  advanceClock(t, 61_000)
  await archive.sweep()
  t.same(await fsp.readdir(path.join(dir, id)), ['session.json'], 'which the sweep removes a minute on')
})

t.test('a lock is broken when its holder is gone or it is older than five seconds, and waited for otherwise', async (t) => {
  const { dir, archive } = await setup(t)
  const host = os.hostname()
  const now = Date.now()
  const dead = await new Promise<number>((resolve) => {
    const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' })
    child.on('close', () => resolve(child.pid as number))
  })
  const broken: Array<[string, string]> = [
    ['its holder exited', `${dead} 0123456789abcdef ${now} ${host}`],
    ['a former process had this pid (a restarted container)', `${process.pid} 0123456789abcdef ${now} ${host}`],
    ['it is six seconds old, though its holder lives', `${process.ppid} 0123456789abcdef ${now - 6000} ${host}`],
    ['it is six seconds old, on another host', `${process.ppid} 0123456789abcdef ${now - 6000} elsewhere`]
  ]
  for (const [why, text] of broken) {
    const id = newDomain()
    await fsp.writeFile(path.join(dir, `.${id}.lock`), text)
    await archive.set(id, 'session', 'written')
    t.equal(await archive.get(id, 'session'), 'written', `broken: ${why}`)
  }

  const empty = newDomain()
  const lock = path.join(dir, `.${empty}.lock`)
  await fsp.writeFile(lock, '')
  const past = new Date(now - 6000)
  await fsp.utimes(lock, past, past)
  await archive.set(empty, 'session', 'written')
  t.equal(await archive.get(empty, 'session'), 'written', 'broken: a lock that never got its holder written is judged by its mtime')

  for (const [why, text] of [
    ['a live process on this host', `${process.ppid} 0123456789abcdef ${now} ${host}`],
    ['a process on another host', `1 0123456789abcdef ${now} elsewhere`],
    ['a lock that is being written', '']
  ]) {
    const id = newDomain()
    const file = path.join(dir, `.${id}.lock`)
    await fsp.writeFile(file, text as string)
    const write = archive.set(id, 'session', 'waited')
    t.equal(await settledWithin(write, 100), false, `waited for: ${why}`)
    await fsp.unlink(file)
    await write
    t.equal(await archive.get(id, 'session'), 'waited', 'and taken once released')
  }
})

t.test('a lock taken by someone else while this process breaks a stale one is put back', async (t) => {
  const host = os.hostname()
  let fresh = ''
  const { dir, archive } = await setup(t, {
    rename: (async (from: string, to: string) => {
      // Another process broke the stale lock and took a fresh one just before this rename.
      if (to.endsWith('.broken') && fresh !== '') {
        await fsp.unlink(from)
        await fsp.writeFile(from, fresh)
        fresh = ''
      }
      return await fsp.rename(from, to)
    }) as FileArchiveFs['rename']
  })
  const id = newDomain()
  const lock = path.join(dir, `.${id}.lock`)
  await fsp.writeFile(lock, `1 0123456789abcdef ${Date.now() - 60_000} ${host}`)
  fresh = `${process.ppid} 0123456789abcdef ${Date.now()} ${host}`
  const expected = fresh
  const write = archive.set(id, 'session', 'mine')
  t.equal(await settledWithin(write, 100), false, 'the write waits for the fresh holder')
  t.equal(await fsp.readFile(lock, 'utf8'), expected, 'whose lock is back in place')
  await fsp.unlink(lock)
  await write
  t.equal(await archive.get(id, 'session'), 'mine')
  t.same((await fsp.readdir(dir)).filter((name) => name.endsWith('.broken')), [], 'nothing of the breaking is left')
})

t.test('a lock that another breaker removed first is simply taken', async (t) => {
  const { dir, archive } = await setup(t, {
    rename: (async (from: string, to: string) => {
      if (to.endsWith('.broken')) await fsp.unlink(from)
      return await fsp.rename(from, to)
    }) as FileArchiveFs['rename']
  })
  const id = newDomain()
  await fsp.writeFile(path.join(dir, `.${id}.lock`), `1 0123456789abcdef ${Date.now() - 60_000} elsewhere`)
  await archive.set(id, 'session', 'mine')
  t.equal(await archive.get(id, 'session'), 'mine')
})

t.test('a lock released between a failed take and its check is taken at once', async (t) => {
  let released = false
  const { dir, archive } = await setup(t, {
    open: (async (file: string, flags: number, mode?: number) => {
      const handle = await fsp.open(file, flags, mode)
      // The holder releases right after this process found the lock taken.
      if (!released && file.endsWith('.lock') && (flags & fsp.constants.O_EXCL) === 0) {
        await handle.close()
        await fsp.unlink(file)
        released = true
        return await fsp.open(file, flags, mode)
      }
      return handle
    }) as FileArchiveFs['open']
  })
  const id = newDomain()
  await fsp.writeFile(path.join(dir, `.${id}.lock`), `${process.ppid} 0123456789abcdef ${Date.now()} ${os.hostname()}`)
  await archive.set(id, 'session', 'mine')
  t.ok(released)
  t.equal(await archive.get(id, 'session'), 'mine')
})

t.test('a lock that cannot be taken or read is the archive error it maps to, and leaves no lock behind', async (t) => {
  let failing = ''
  const { dir, archive } = await setup(t, {
    link: (async (from: string, to: string) => {
      if (failing === 'take' && to.endsWith('.lock')) throw systemError('EACCES')
      return await fsp.link(from, to)
    }) as FileArchiveFs['link'],
    open: (async (file: string, flags: number, mode?: number) => {
      if (file.endsWith('.lock') && failing === 'check') throw systemError('EIO')
      const handle = await fsp.open(file, flags, mode)
      if (!file.endsWith('.holder') || failing !== 'hold') return handle
      // A full disk while a holder file records its process.
      return Object.assign(Object.create(handle) as FileHandle, {
        writeFile: async () => { throw systemError('ENOSPC') },
        close: () => handle.close()
      })
    }) as FileArchiveFs['open'],
    rename: (async (from: string, to: string) => {
      if (failing === 'break' && to.endsWith('.broken')) throw systemError('EIO')
      return await fsp.rename(from, to)
    }) as FileArchiveFs['rename']
  })
  const id = newDomain()
  failing = 'take'
  await t.rejects(archive.set(id, 'session', 'x'), { code: 'FST_SESSION_ARCHIVE_DENIED' }, 'EACCES linking the lock')
  t.same((await fsp.readdir(dir)).filter((name) => name.includes('.lock')), [], 'no lock is left behind')
  const holders = (await fsp.readdir(dir)).filter((name) => name.endsWith('.holder'))
  t.equal(holders.length, 1, 'and the holder file is kept for the next lock')
  await fsp.unlink(path.join(dir, holders[0] as string))
  failing = 'hold'
  // The holder file is gone: the next lock makes another, and the disk is full.
  await t.rejects(archive.set(id, 'session', 'x'), { code: 'FST_SESSION_ARCHIVE_FULL' }, 'ENOSPC writing a new holder')
  t.same((await fsp.readdir(dir)).filter((name) => name.includes('.lock') || name.endsWith('.holder')), [], 'no lock or holder is left behind')

  await fsp.writeFile(path.join(dir, `.${id}.lock`), `1 0123456789abcdef ${Date.now() - 60_000} elsewhere`)
  failing = 'check'
  await t.rejects(archive.set(id, 'session', 'x'), { code: 'FST_SESSION_ARCHIVE_IO' }, 'EIO reading a lock found taken')
  failing = 'break'
  await t.rejects(archive.set(id, 'session', 'x'), { code: 'FST_SESSION_ARCHIVE_IO' }, 'EIO breaking a stale lock')
  failing = ''
  await archive.set(id, 'session', 'x')
  t.equal(await archive.get(id, 'session'), 'x', 'once the disk works, the stale lock is broken and the write goes through')
})

t.test('the sweep breaks stale locks of domains that are gone, and leaves live ones', async (t) => {
  const { dir, archive } = await setup(t)
  const [gone, live] = [newDomain(), newDomain()]
  await fsp.writeFile(path.join(dir, `.${gone}.lock`), `1 0123456789abcdef ${Date.now() - 60_000} elsewhere`)
  await fsp.writeFile(path.join(dir, `.${live}.lock`), `${process.ppid} 0123456789abcdef ${Date.now()} ${os.hostname()}`)
  await archive.sweep()
  t.same((await fsp.readdir(dir)).sort(), [`.${live}.lock`])
})

t.test('the sweep does not wait for a domain someone else holds: it is swept next time', async (t) => {
  const { dir, archive } = await setup(t)
  const id = newDomain()
  await archive.set(id, 'session', 'x', 60_000)
  const past = new Date(Date.now() - 1000)
  await fsp.utimes(path.join(dir, id, 'session.json'), past, past)
  const lock = path.join(dir, `.${id}.lock`)
  await fsp.writeFile(lock, `${process.ppid} 0123456789abcdef ${Date.now()} ${os.hostname()}`)
  t.equal(await archive.sweep(), 0, 'a held domain is skipped')
  t.ok((await fsp.lstat(path.join(dir, id, 'session.json'))).isFile())
  await fsp.unlink(lock)
  t.equal(await archive.sweep(), 1, 'and swept once it is free')
})

t.test("a lock of this archive's own kind is judged by its holder's mtime, the time it was taken", async (t) => {
  const { dir, archive } = await setup(t)
  const host = os.hostname()
  const held = `${process.ppid} 0123456789abcdef - ${host}`
  const old = newDomain()
  const oldLock = path.join(dir, `.${old}.lock`)
  await fsp.writeFile(oldLock, held)
  const past = new Date(Date.now() - 6000)
  await fsp.utimes(oldLock, past, past)
  await archive.set(old, 'session', 'written')
  t.equal(await archive.get(old, 'session'), 'written', 'broken: taken six seconds ago, though its holder lives')

  const recent = newDomain()
  const recentLock = path.join(dir, `.${recent}.lock`)
  await fsp.writeFile(recentLock, held)
  const write = archive.set(recent, 'session', 'waited')
  t.equal(await settledWithin(write, 100), false, 'waited for: taken just now by a live process')
  await fsp.unlink(recentLock)
  await write
})

t.test('a stale lock that its holder takes again while this process breaks it is put back', async (t) => {
  const host = os.hostname()
  let retake = false
  const { dir, archive } = await setup(t, {
    rename: (async (from: string, to: string) => {
      // The same holder file, linked again: same inode, same text, a new mtime.
      if (to.endsWith('.broken') && retake) {
        const now = new Date()
        await fsp.utimes(from, now, now)
        retake = false
      }
      return await fsp.rename(from, to)
    }) as FileArchiveFs['rename']
  })
  const id = newDomain()
  const lock = path.join(dir, `.${id}.lock`)
  await fsp.writeFile(lock, `${process.ppid} 0123456789abcdef - ${host}`)
  const past = new Date(Date.now() - 6000)
  await fsp.utimes(lock, past, past)
  retake = true
  const write = archive.set(id, 'session', 'mine')
  t.equal(await settledWithin(write, 100), false, 'the write waits for the holder that took it again')
  t.ok((await fsp.lstat(lock)).mtimeMs > Date.now() - 1000, 'whose lock is back in place')
  await fsp.unlink(lock)
  await write
  t.equal(await archive.get(id, 'session'), 'mine')
  t.same((await fsp.readdir(dir)).filter((name) => name.endsWith('.broken')), [], 'nothing of the breaking is left')
})

t.test('each lock is a link to a holder file that the next lock reuses; close() removes the unused ones', async (t) => {
  const { dir, archive } = await setup(t)
  const ids = Array.from({ length: 8 }, newDomain)
  for (const id of ids) await archive.set(id, 'session', 'one after another')
  const holders = async () => (await fsp.readdir(dir)).filter((name) => name.endsWith('.holder'))
  t.equal((await holders()).length, 1, 'writes one after another share one holder file')
  await Promise.all(ids.map((id) => archive.set(id, 'session', 'at once')))
  const many = (await holders()).length
  t.ok(many >= 1 && many <= ids.length, `writes at once take one holder each at most (${many})`)
  for (const name of await holders()) {
    t.match(await fsp.readFile(path.join(dir, name), 'utf8'), new RegExp(`^${process.pid} [0-9a-f]{16} - ${os.hostname()}$`), 'a holder names its process')
    t.equal((await fsp.lstat(path.join(dir, name))).nlink, 1, 'and holds no lock once the writes are done')
  }
  t.same((await fsp.readdir(dir)).filter((name) => name.endsWith('.lock')), [], 'every lock was released')
  for (const id of ids) t.equal(await archive.get(id, 'session'), 'at once')
  await archive.close()
  t.same(await holders(), [], 'close() removes the holder files')
})

t.test('the sweep removes holder files of processes that are gone, and keeps live and linked ones', async (t) => {
  const { dir, archive } = await setup(t)
  const host = os.hostname()
  const dead = await new Promise<number>((resolve) => {
    const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' })
    child.on('close', () => resolve(child.pid as number))
  })
  const hourAgo = new Date(Date.now() - 61 * 60_000)
  const holder = async (name: string, text: string, mtime?: Date) => {
    const file = path.join(dir, `.${name}.holder`)
    await fsp.writeFile(file, text)
    if (mtime !== undefined) await fsp.utimes(file, mtime, mtime)
    return `.${name}.holder`
  }
  const gone = [
    await holder('0000000000000001', `${dead} 0123456789abcdef - ${host}`),
    await holder('0000000000000002', `${process.pid} 0123456789abcdef - ${host}`),
    await holder('0000000000000003', '1 0123456789abcdef - elsewhere', hourAgo)
  ]
  const kept = [
    await holder('0000000000000004', `${process.ppid} 0123456789abcdef - ${host}`, hourAgo),
    await holder('0000000000000005', '1 0123456789abcdef - elsewhere'),
    await holder('0000000000000006', `${dead} 0123456789abcdef - ${host}`)
  ]
  // A dead process's holder that still holds a lock: the lock is broken, the holder kept until it has no other name.
  const linkedId = newDomain()
  await fsp.link(path.join(dir, kept[2] as string), path.join(dir, `.${linkedId}.lock`))
  await fsp.mkdir(path.join(dir, linkedId), { mode: 0o700 })
  const names = (await fsp.readdir(dir)).filter((name) => name.endsWith('.holder'))
  await archive.sweep()
  const left = (await fsp.readdir(dir)).filter((name) => name.endsWith('.holder'))
  for (const name of gone) t.notOk(left.includes(name), `removed: ${name}`)
  for (const name of kept.slice(0, 2)) t.ok(left.includes(name), `kept: ${name}`)
  t.ok(names.length > left.length)
  await archive.sweep()
  t.notOk((await fsp.readdir(dir)).includes(kept[2] as string), 'the dead holder goes once its lock was broken')
})

t.test('a lock whose holder file was removed meanwhile is taken through a new one', async (t) => {
  const { dir, archive } = await setup(t)
  const id = newDomain()
  await archive.set(id, 'session', 'first')
  const [first] = (await fsp.readdir(dir)).filter((name) => name.endsWith('.holder'))
  await fsp.unlink(path.join(dir, first as string))
  await archive.set(id, 'session', 'second')
  t.equal(await archive.get(id, 'session'), 'second')
  const now = (await fsp.readdir(dir)).filter((name) => name.endsWith('.holder'))
  t.equal(now.length, 1, 'one new holder file')
  t.not(now[0], first)
})

t.test('a lock that could not be released ages until it is broken: its holder takes no other lock', async (t) => {
  let failing = false
  const { dir, archive } = await setup(t, {
    unlink: (async (file: string) => {
      if (failing && file.endsWith('.lock')) throw systemError('EIO')
      return await fsp.unlink(file)
    }) as FileArchiveFs['unlink']
  })
  const [stuck, other] = [newDomain(), newDomain()]
  failing = true
  await archive.set(stuck, 'session', 'stored')
  failing = false
  const lock = path.join(dir, `.${stuck}.lock`)
  const left = await fsp.lstat(lock)
  t.equal(await archive.get(stuck, 'session'), 'stored', 'the write went through; only its release failed')
  await archive.set(other, 'session', 'another lock')
  t.equal((await fsp.lstat(lock)).mtimeMs, left.mtimeMs, 'the next lock did not renew the one left in place')
  advanceClock(t, 6000)
  await archive.set(stuck, 'session', 'after')
  t.equal(await archive.get(stuck, 'session'), 'after', 'five seconds on, it is broken')
  await t.rejects(fsp.lstat(lock), { code: 'ENOENT' })
})
