import { execFile } from 'node:child_process'
import * as fsp from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t, { type Test } from 'tap'
import { FileArchive, type FileArchiveFs } from '../lib/archives/file.js'
import { buildApp, cookieValue, setCookies } from './helpers/app.js'
import { tempDir } from './helpers/temp-dir.js'
import { withoutHolders } from './helpers/file-archive-files.js'
import { openWithTempFileFaults } from './helpers/temp-file-faults.js'

// A FileArchive whose disk fails under real requests: the request that needed
// the disk answers 503 with the archive's code and sends no cookie, what was
// stored stays as it was, no temp file stays behind, and once the disk works
// again the same cookie carries on as if nothing happened.

const KIND: Record<string, string> = {
  ENOSPC: 'FST_SESSION_ARCHIVE_FULL',
  EDQUOT: 'FST_SESSION_ARCHIVE_FULL',
  EACCES: 'FST_SESSION_ARCHIVE_DENIED',
  EPERM: 'FST_SESSION_ARCHIVE_DENIED',
  EROFS: 'FST_SESSION_ARCHIVE_DENIED',
  EIO: 'FST_SESSION_ARCHIVE_IO'
}

/** Where the disk fails: `writeFile` and `utimes` are the temp file's, through its handle. */
type Step = 'writeFile' | 'utimes' | 'rename' | 'mkdir' | 'open' | 'rm'

function systemError (code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: simulated failure`), { code })
}

/** Every file under `dir`, dot files included, as paths relative to it; the lock holder files of the open archive left out. */
async function filesUnder (dir: string): Promise<string[]> {
  const entries = await fsp.readdir(dir, { recursive: true, withFileTypes: true }).catch(() => [])
  return withoutHolders(entries.filter((entry) => entry.isFile())
    .map((entry) => path.relative(dir, path.join(entry.parentPath, entry.name))))
    .sort()
}

/** An archive-mode app on a FileArchive whose `fs` fails at `fault.step` with `fault.code` while `fault.on`. */
async function faultyApp (t: Test) {
  const dir = path.join(await tempDir(t), 'sessions')
  const fault = { on: false, step: 'writeFile' as Step, code: 'EIO' }
  const fails = (step: Step): boolean => fault.on && fault.step === step
  const wrap = (step: 'rename' | 'mkdir' | 'rm') => async (...args: unknown[]) => {
    if (fails(step)) throw systemError(fault.code)
    return await (fsp[step] as (...args: unknown[]) => Promise<unknown>)(...args)
  }
  const fs = { ...fsp } as Record<string, unknown>
  for (const step of ['rename', 'mkdir', 'rm'] as const) fs[step] = wrap(step)
  const open = openWithTempFileFaults((step) => step !== 'stat' && fails(step) ? systemError(fault.code) : undefined)
  fs['open'] = async (file: string, flags: number, mode?: number) => {
    if (fails('open')) throw systemError(fault.code)
    return await open(file, flags, mode)
  }
  const archive = new FileArchive({ dir, sweepIntervalMs: 0, fs: fs as unknown as FileArchiveFs })
  const app = await buildApp(t, { mode: 'archive', archive })
  app.post('/visit', async (request) => {
    const visits = (request.session.get('visits') as number | undefined ?? 0) + 1
    request.session.set('visits', visits)
    return { visits }
  })
  app.get('/read', async (request) => ({ isNew: request.session.isNew, visits: request.session.get('visits') ?? null }))
  app.post('/logout', async (request) => {
    await request.session.destroy()
    return { ok: true }
  })
  const visit = (cookie?: string) => app.inject({ method: 'POST', url: '/visit', cookies: cookie === undefined ? {} : { 'session-id': cookie } })
  const read = (cookie: string) => app.inject({ url: '/read', cookies: { 'session-id': cookie } })
  return { app, dir, fault, archive, visit, read }
}

t.test('a write that fails with a full disk, a permission error or an I/O error, at any step, answers 503 and recovers', async (t) => {
  for (const code of Object.keys(KIND)) {
    for (const step of ['writeFile', 'utimes', 'rename'] as const) {
      const label = `${code} in ${step}`
      const { dir, fault, archive, visit, read } = await faultyApp(t)
      const first = await visit()
      const cookie = cookieValue(first, 'session-id')!
      const id = cookie.split('.')[0] as string
      const stored = await fsp.readFile(path.join(dir, id, 'session.json'), 'utf8')
      Object.assign(fault, { on: true, step, code })

      const failed = await visit(cookie)
      t.equal(failed.statusCode, 503, `${label}: 503`)
      t.equal(failed.json().code, KIND[code], `${label}: ${KIND[code]}`)
      t.same(setCookies(failed), [], `${label}: no cookie for state that was not stored`)
      const fresh = await visit()
      t.equal(fresh.statusCode, 503, `${label}: a new session cannot be stored either`)
      t.equal(fresh.json().code, KIND[code])
      t.same(setCookies(fresh), [], `${label}: and is not handed out`)

      t.equal(await fsp.readFile(path.join(dir, id, 'session.json'), 'utf8'), stored, `${label}: the stored state is intact`)
      t.same(await filesUnder(dir), [`${id}/session.json`], `${label}: no temp file, no half-written session`)
      const during = await read(cookie)
      t.same([during.statusCode, during.json()], [200, { isNew: false, visits: 1 }], `${label}: reads still work`)

      fault.on = false
      const healed = await visit(cookie)
      t.same([healed.statusCode, healed.json()], [200, { visits: 2 }], `${label}: the next write after the fault succeeds`)
      t.equal(cookieValue(healed, 'session-id'), cookie, `${label}: on the same session`)
      t.equal(cookieValue(await visit(), 'session-id')?.length, cookie.length, `${label}: and new sessions are stored again`)
      t.equal((await filesUnder(dir)).filter((file) => !file.endsWith('/session.json')).length, 0, `${label}: no temp file after recovery`)
      await archive.sweep()
      t.equal(withoutHolders(await fsp.readdir(dir)).length, 2, `${label}: the sweep removes what the failed new session left, and keeps both sessions`)
    }
  }
})

t.test('a full disk when creating a new session\'s directory answers 503 and recovers', async (t) => {
  const { dir, fault, visit } = await faultyApp(t)
  Object.assign(fault, { on: true, step: 'mkdir', code: 'ENOSPC' })
  const failed = await visit()
  t.equal(failed.statusCode, 503)
  t.equal(failed.json().code, 'FST_SESSION_ARCHIVE_FULL')
  t.same(setCookies(failed), [])
  t.same(await filesUnder(dir), [])
  fault.on = false
  const healed = await visit()
  t.equal(healed.statusCode, 200)
  t.same(await filesUnder(dir), [`${cookieValue(healed, 'session-id')!.split('.')[0]}/session.json`])
})

t.test('a read that fails answers 503 without logging the user out, and the session is there once it works', async (t) => {
  for (const code of ['EIO', 'EACCES']) {
    const { fault, visit, read } = await faultyApp(t)
    const cookie = cookieValue(await visit(), 'session-id')!
    Object.assign(fault, { on: true, step: 'open', code })
    const failed = await read(cookie)
    t.equal(failed.statusCode, 503, code)
    t.equal(failed.json().code, KIND[code])
    t.same(setCookies(failed), [], 'the cookie is not cleared')
    fault.on = false
    t.same((await read(cookie)).json(), { isNew: false, visits: 1 }, `${code}: the session is intact`)
  }
})

t.test('a destroy that fails answers 503, keeps the cookie and the session, and works once the disk does', async (t) => {
  const { dir, fault, app, visit, read } = await faultyApp(t)
  const cookie = cookieValue(await visit(), 'session-id')!
  const id = cookie.split('.')[0] as string
  Object.assign(fault, { on: true, step: 'rm', code: 'EIO' })
  const logout = () => app.inject({ method: 'POST', url: '/logout', cookies: { 'session-id': cookie } })
  const failed = await logout()
  t.equal(failed.statusCode, 503)
  t.equal(failed.json().code, 'FST_SESSION_ARCHIVE_IO')
  t.same(setCookies(failed), [])
  t.same(await filesUnder(dir), [`${id}/session.json`])
  fault.on = false
  t.same((await read(cookie)).json(), { isNew: false, visits: 1 })
  const done = await logout()
  t.equal(done.statusCode, 200)
  t.match(setCookies(done), [/^session-id=; Max-Age=0;/])
  t.same((await read(cookie)).json(), { isNew: true, visits: null }, 'the destroyed session is gone')
  t.same(await filesUnder(dir), [])
})

// A real read-only directory: permission bits bind only for a user other than
// root, so as root the archive runs in a child process as `nobody`. That child
// may not be able to enter the checkout (a clone under /root or in a 0700
// directory), so it runs the built archive from a copy of just what it
// imports, in a temp directory everyone can read.
const NOBODY = 65534

const child = `
const [kit, dir, id, fresh] = process.argv.slice(1)
const { FileArchive } = await import(kit + '/archives/file.js')
const archive = new FileArchive({ dir, sweepIntervalMs: 0 })
const outcome = (promise) => promise.then((value) => ({ ok: true, value: value ?? null }), (error) => ({ ok: false, code: error.code, status: error.statusCode }))
const ready = await outcome(archive.ready())
const change = await outcome(archive.set(id, 'session', 'changed'))
const create = await outcome(archive.set(fresh, 'session', 'new'))
const read = await outcome(archive.get(id, 'session'))
console.log(JSON.stringify({ ready, change, create, read }))
`

interface Outcome { ok: boolean, value?: string | null, code?: string, status?: number }

/** The built archive and what it imports, copied where any user can read them. */
async function childKit (t: Test): Promise<string> {
  const kit = await tempDir(t)
  const dist = fileURLToPath(new URL('../dist/', import.meta.url))
  const modules = fileURLToPath(new URL('../node_modules/@fastify/error/', import.meta.url))
  await fsp.mkdir(path.join(kit, 'archives'))
  await fsp.mkdir(path.join(kit, 'node_modules', '@fastify', 'error'), { recursive: true })
  for (const file of ['archives/file.js', 'archives/file-system.js', 'archives/archive-options.js', 'errors.js', 'keyed-queue.js', 'random-pool.js']) await fsp.copyFile(path.join(dist, file), path.join(kit, file))
  for (const file of ['index.js', 'package.json']) await fsp.copyFile(path.join(modules, file), path.join(kit, 'node_modules', '@fastify', 'error', file))
  await fsp.writeFile(path.join(kit, 'package.json'), '{ "type": "module" }')
  for (const target of [kit, ...await allUnder(kit)]) await fsp.chmod(target, (await fsp.lstat(target)).isDirectory() ? 0o755 : 0o644)
  return kit
}

/** Every path under `dir`, directories included. */
async function allUnder (dir: string): Promise<string[]> {
  const entries = await fsp.readdir(dir, { recursive: true, withFileTypes: true })
  return entries.map((entry) => path.join(entry.parentPath, entry.name))
}

async function runChild (kit: string, dir: string, id: string, fresh: string, asUid: number | undefined) {
  const options = asUid === undefined ? { cwd: kit } : { cwd: kit, uid: asUid, gid: asUid }
  // Through env -u: the test runner hands its children loaders (NODE_OPTIONS) from this
  // checkout, which the child's user may not be able to enter.
  const { stdout } = await promisify(execFile)('/usr/bin/env', ['-u', 'NODE_OPTIONS', process.execPath, '--input-type=module', '-e', child, kit, dir, id, fresh], options)
  return JSON.parse(stdout.trim().split('\n').pop() as string) as Record<'ready' | 'change' | 'create' | 'read', Outcome>
}

t.test('a real read-only archive directory: ready() and writes reject with FST_SESSION_ARCHIVE_DENIED (503), reads work, and writes work again once it is writable', async (t) => {
  const kit = await childKit(t)
  const base = await tempDir(t)
  const dir = path.join(base, 'sessions')
  const isRoot = process.getuid?.() === 0
  const uid = isRoot ? NOBODY : undefined
  await fsp.chmod(base, 0o755)
  const [id, fresh, other] = ['stored-session-id-1', 'fresh-session-id-2', 'other-session-id-3']

  const archive = new FileArchive({ dir, sweepIntervalMs: 0 })
  await archive.set(id, 'session', 'stored')
  await archive.set(other, 'session', 'stored too')
  await archive.close()
  // The archive's own (nobody's, when running as root), readable, writable by no one.
  const tree = [dir, ...await allUnder(dir)]
  t.same((await fsp.readdir(dir)).filter((name) => !name.startsWith('.')).sort(), [other, id].sort(), 'two sessions are stored')
  for (const target of tree) {
    if (isRoot) await fsp.chown(target, NOBODY, NOBODY)
    await fsp.chmod(target, (await fsp.lstat(target)).isDirectory() ? 0o555 : 0o444)
  }

  const denied = await runChild(kit, dir, id, fresh, uid)
  for (const step of ['ready', 'change', 'create'] as const) {
    t.same(denied[step], { ok: false, code: 'FST_SESSION_ARCHIVE_DENIED', status: 503 }, `${step}: FST_SESSION_ARCHIVE_DENIED`)
  }
  t.same(denied.read, { ok: true, value: 'stored' }, 'a stored session is still read')
  t.equal(await fsp.readFile(path.join(dir, id, 'session.json'), 'utf8'), 'stored', 'the stored state is intact')
  t.same((await filesUnder(dir)).filter((file) => !file.endsWith('/session.json')), [], 'no temp or lock file is left')

  for (const target of tree) if ((await fsp.lstat(target)).isDirectory()) await fsp.chmod(target, 0o700)
  const healed = await runChild(kit, dir, id, fresh, uid)
  t.same(healed, { ready: { ok: true, value: null }, change: { ok: true, value: null }, create: { ok: true, value: null }, read: { ok: true, value: 'changed' } },
    'once writable, the stored session is written, and a new one stored')
  t.equal(await fsp.readFile(path.join(dir, fresh, 'session.json'), 'utf8'), 'new')
})
