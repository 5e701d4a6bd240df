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
// is a file, <dir>/.<domain>.lock, holding "<pid> <incarnation> <since> <host>".
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
  t.match(await fsp.readFile(lock, 'utf8'), new RegExp(`^${child.pid} [0-9a-f]{16} \\d+ `), 'the child holds the lock')
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
    open: (async (file: string, flags: number, mode?: number) => {
      const isLock = file.endsWith('.lock')
      if (isLock && failing === 'take' && (flags & fsp.constants.O_EXCL) !== 0) throw systemError('EACCES')
      if (isLock && failing === 'check' && (flags & fsp.constants.O_EXCL) === 0) throw systemError('EIO')
      const handle = await fsp.open(file, flags, mode)
      if (!isLock || failing !== 'hold') return handle
      // A full disk while the lock records its holder.
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
  await t.rejects(archive.set(id, 'session', 'x'), { code: 'FST_SESSION_ARCHIVE_DENIED' }, 'EACCES creating the lock')
  failing = 'hold'
  await t.rejects(archive.set(id, 'session', 'x'), { code: 'FST_SESSION_ARCHIVE_FULL' }, 'ENOSPC writing its holder')
  t.same((await fsp.readdir(dir)).filter((name) => name.includes('.lock')), [], 'no lock is left behind')

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
