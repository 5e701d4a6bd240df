import { execFile } from 'node:child_process'
import * as fsp from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t, { type Test } from 'tap'
import { FileArchive, type FileArchiveFs } from '../lib/archives/file.js'
import { buildApp, cookieValue, SECRET, setCookies } from './helpers/app.js'
import { tempDir } from './helpers/temp-dir.js'

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

type Step = 'writeFile' | 'utimes' | 'rename' | 'mkdir' | 'open' | 'rm'

function systemError (code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: simulated failure`), { code })
}

/** Every file under `dir`, dot files included, as paths relative to it. */
async function filesUnder (dir: string): Promise<string[]> {
  const entries = await fsp.readdir(dir, { recursive: true, withFileTypes: true }).catch(() => [])
  return entries.filter((entry) => entry.isFile())
    .map((entry) => path.relative(dir, path.join(entry.parentPath, entry.name)))
    .sort()
}

/** An archive-mode app on a FileArchive whose `fs` fails at `fault.step` with `fault.code` while `fault.on`. */
async function faultyApp (t: Test) {
  const dir = path.join(await tempDir(t), 'sessions')
  const fault = { on: false, step: 'writeFile' as Step, code: 'EIO' }
  const wrap = (step: Step) => async (...args: unknown[]) => {
    if (fault.on && fault.step === step) {
      // A write that dies half-way has already created its temp file.
      if (step === 'writeFile') await fsp.writeFile(args[0] as string, '{"c":', { flag: 'wx' })
      throw systemError(fault.code)
    }
    return await (fsp[step] as (...args: unknown[]) => Promise<unknown>)(...args)
  }
  const fs = { ...fsp } as Record<string, unknown>
  for (const step of ['writeFile', 'utimes', 'rename', 'mkdir', 'open', 'rm'] as const) fs[step] = wrap(step)
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
      t.equal((await fsp.readdir(dir)).length, 2, `${label}: the sweep removes what the failed new session left, and keeps both sessions`)
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
// root, so as root the server runs in a child process as `nobody`.
const root = fileURLToPath(new URL('..', import.meta.url))
const entry = new URL('../dist/index.js', import.meta.url).href
const NOBODY = 65534

const server = `
import Fastify from 'fastify'
import { fastifySessions, FileArchive } from ${JSON.stringify(entry)}
const [dir, cookie] = process.argv.slice(1)
const app = Fastify()
app.register(fastifySessions, { secret: ${JSON.stringify(SECRET)}, mode: 'archive', archive: new FileArchive({ dir, sweepIntervalMs: 0 }) })
app.post('/visit', async (request) => {
  const visits = (request.session.get('visits') ?? 0) + 1
  request.session.set('visits', visits)
  return { visits }
})
const answer = (response) => ({ status: response.statusCode, body: response.json(), cookie: response.headers['set-cookie'] ?? null })
const old = await app.inject({ method: 'POST', url: '/visit', cookies: cookie === '' ? {} : { 'session-id': cookie } })
const fresh = await app.inject({ method: 'POST', url: '/visit' })
console.log(JSON.stringify({ old: answer(old), fresh: answer(fresh) }))
await app.close()
`

async function runServer (dir: string, cookie: string, asUid: number | undefined): Promise<{ old: Answer, fresh: Answer }> {
  const options = asUid === undefined ? { cwd: root } : { cwd: root, uid: asUid, gid: asUid }
  const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', server, dir, cookie], options)
  return JSON.parse(stdout.trim().split('\n').pop() as string)
}

interface Answer { status: number, body: { visits?: number, code?: string }, cookie: string | string[] | null }

t.test('a real read-only archive directory answers 503 FST_SESSION_ARCHIVE_DENIED, and recovers once it is writable', async (t) => {
  const base = await tempDir(t)
  const dir = path.join(base, 'sessions')
  const isRoot = process.getuid?.() === 0
  const uid = isRoot ? NOBODY : undefined
  if (isRoot) await fsp.chmod(base, 0o755)

  const first = await runServer(dir, '', undefined)
  const cookie = (first.old.cookie as string).split(';')[0]!.slice('session-id='.length)
  const id = cookie.split('.')[0] as string
  const stored = await fsp.readFile(path.join(dir, id, 'session.json'), 'utf8')
  // Readable by everyone, writable by no one but root (who is not the server).
  const domains = await fsp.readdir(dir)
  t.equal(domains.length, 2, 'two sessions are stored')
  for (const name of domains) {
    await fsp.chmod(path.join(dir, name, 'session.json'), 0o444)
    await fsp.chmod(path.join(dir, name), 0o555)
  }
  await fsp.chmod(dir, 0o555)

  const denied = await runServer(dir, cookie, uid)
  t.equal(denied.old.status, 503, 'a change to a stored session cannot be written')
  t.equal(denied.old.body.code, 'FST_SESSION_ARCHIVE_DENIED')
  t.equal(denied.old.cookie, null)
  t.equal(denied.fresh.status, 503, 'nor can a new session')
  t.equal(denied.fresh.body.code, 'FST_SESSION_ARCHIVE_DENIED')
  t.equal(denied.fresh.cookie, null)
  t.equal(await fsp.readFile(path.join(dir, id, 'session.json'), 'utf8'), stored, 'the stored state is intact')
  t.same((await filesUnder(dir)).filter((file) => !file.endsWith('/session.json')), [], 'no temp file is left')

  for (const target of [dir, ...domains.map((name) => path.join(dir, name))]) await fsp.chmod(target, 0o700)
  if (isRoot) {
    for (const target of [dir, ...domains.flatMap((name) => [path.join(dir, name), path.join(dir, name, 'session.json')])]) {
      await fsp.chown(target, NOBODY, NOBODY)
    }
  }
  const healed = await runServer(dir, cookie, uid)
  t.same([healed.old.status, healed.old.body], [200, { visits: 2 }], 'once writable, the same session is written')
  t.same([healed.fresh.status, healed.fresh.body], [200, { visits: 1 }], 'and new sessions are stored')
})
