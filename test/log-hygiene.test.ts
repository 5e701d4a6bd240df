import * as fsp from 'node:fs/promises'
import path from 'node:path'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import t, { type Test } from 'tap'
import { FileArchive, type FileArchiveFs } from '../lib/archives/file.js'
import { MemoryArchive } from '../lib/archives/memory.js'
import type { FastifySessionsOptions } from '../lib/index.js'
import { buildApp, LogCapture, OTHER_SECRET, SECRET } from './helpers/app.js'
import { RecordingArchive } from './helpers/archives.js'
import { tempDir } from './helpers/temp-dir.js'

// Everything the apps log at `trace`, across logins, reads, bad cookies,
// archive failures, rotations and destroys, is searched for every secret,
// every cookie value and every session id that went over the wire.

/** Collects what must never be logged, and every log line. */
class Watch {
  readonly logs = new LogCapture()
  readonly secrets = [SECRET, OTHER_SECRET]
  readonly values = new Set<string>()

  get server () {
    return { logger: { level: 'trace', stream: this.logs.stream } }
  }

  /** Remembers a cookie value and the parts that identify a session on their own. */
  remember (value: string | undefined): void {
    if (value === undefined || value.length < 8) return
    this.values.add(value)
    for (const part of value.split(/[.*]/)) if (part.length >= 16) this.values.add(part)
  }

  /** Sends a request, remembering the cookie values it carries and those it gets. */
  async send (app: FastifyInstance, method: 'GET' | 'POST', url: string, cookie?: string): Promise<LightMyRequestResponse> {
    if (cookie !== undefined) this.remember(cookie.slice(cookie.indexOf('=') + 1))
    const response = await app.inject({ method, url, headers: cookie === undefined ? {} : { cookie } })
    for (const { value } of response.cookies) this.remember(value)
    return response
  }

  check (t: Test): void {
    const text = this.logs.lines.map((line) => JSON.stringify(line))
    t.ok(text.length > 5, `${text.length} log lines were written`)
    t.ok(this.logs.lines.some((line) => line['level'] === 10 || line['level'] === 20), 'at debug and trace too')
    for (const secret of this.secrets) t.notOk(text.some((line) => line.includes(secret)), 'no secret is logged')
    const leaked = [...this.values].filter((value) => text.some((line) => line.includes(value)))
    t.same(leaked, [], `none of ${this.values.size} cookie values, ids and tokens is logged`)
  }
}

function routes (app: FastifyInstance): void {
  app.post('/login', async (request) => {
    await request.session.regenerate()
    request.session.set('user', 'ada')
    request.session.flash('welcome')
    return { ok: true }
  })
  app.get('/read', async (request) => ({ user: request.session.get('user') ?? null, flashes: request.session.flashes() }))
  app.post('/big', async (request) => {
    request.session.set('big', 'x'.repeat(5000))
    return { ok: true }
  })
  app.post('/logout', async (request) => {
    await request.session.destroy()
    return { ok: true }
  })
}

async function journey (watch: Watch, app: FastifyInstance, name: string): Promise<string> {
  const login = await watch.send(app, 'POST', '/login')
  const value = login.cookies.find((cookie) => cookie.name === name)?.value as string
  await watch.send(app, 'GET', '/read', `${name}=${value}`)
  await watch.send(app, 'GET', '/read', `${name}=${value}`)
  for (const bad of [value.slice(0, -3) + 'AAA', value + 'x', 'garbage-garbage-garbage', `${value.slice(0, 32)}.${'A'.repeat(43)}`]) {
    await watch.send(app, 'GET', '/read', `${name}=${bad}`)
  }
  await watch.send(app, 'POST', '/big', `${name}=${value}`)
  return value
}

t.test('cookie mode: no secret, token or part of one in any log line', async (t) => {
  const watch = new Watch()
  const options: Partial<FastifySessionsOptions> = { secret: [SECRET, OTHER_SECRET], rolling: true, cookieSize: { max: 4096, warn: 200 } }
  const app = await buildApp(t, options, watch.server)
  routes(app)
  const value = await journey(watch, app, 'session')
  const old = await buildApp(t, { secret: OTHER_SECRET }, watch.server)
  routes(old)
  const oldToken = (await watch.send(old, 'POST', '/login')).cookies[0]!.value
  await watch.send(app, 'GET', '/read', `session=${oldToken}`)
  await watch.send(app, 'POST', '/logout', `session=${value}`)
  t.ok(watch.logs.withCode('FST_SESSION_COOKIE_REJECTED').length > 0, 'bad cookies were logged, by code')
  t.ok(watch.logs.withCode('FST_SESSION_COOKIE_NEAR_LIMIT').length > 0)
  watch.check(t)
})

t.test('archive mode: no secret, id or signature in any log line, through archive failures too', async (t) => {
  const watch = new Watch()
  const archive = new RecordingArchive(new MemoryArchive())
  const app = await buildApp(t, { mode: 'archive', archive, secret: [SECRET, OTHER_SECRET], rolling: true }, watch.server)
  routes(app)
  const value = await journey(watch, app, 'session-id')
  for (const method of ['get', 'set', 'removeDomain'] as const) {
    archive.fail(method, new Error('connection reset'))
    await watch.send(app, 'GET', '/read', `session-id=${value}`)
    await watch.send(app, 'POST', '/login', `session-id=${value}`)
    await watch.send(app, 'POST', '/logout', `session-id=${value}`)
    archive.heal()
  }
  await watch.send(app, 'POST', '/logout', `session-id=${value}`)
  await watch.send(app, 'GET', '/read', `session-id=${value}`)
  t.ok(watch.logs.withCode('FST_SESSION_ID_REJECTED').length > 0, 'refused ids were logged, by code')
  t.ok(watch.logs.lines.some((line) => line['level'] === 50), 'the archive failures were logged as errors')
  watch.check(t)
})

t.test('archive mode on a FileArchive whose disk fails: codes in the logs, no id of any session', async (t) => {
  const watch = new Watch()
  const dir = path.join(await tempDir(t), 'sessions')
  let failing: string | undefined
  const fault = (step: 'writeFile' | 'rename' | 'rm') => async (...args: unknown[]) => {
    if (failing !== undefined) throw Object.assign(new Error(`${failing}: simulated failure`), { code: failing })
    return await (fsp[step] as (...args: unknown[]) => Promise<unknown>)(...args)
  }
  const fs = { ...fsp, writeFile: fault('writeFile'), rename: fault('rename'), rm: fault('rm') } as unknown as FileArchiveFs
  const archive = new RecordingArchive(new FileArchive({ dir, sweepIntervalMs: 0, fs }))
  const app = await buildApp(t, { mode: 'archive', archive }, watch.server)
  routes(app)
  const value = (await watch.send(app, 'POST', '/login')).cookies[0]!.value
  for (const code of ['ENOSPC', 'EACCES', 'EIO']) {
    failing = code
    t.equal((await watch.send(app, 'POST', '/login', `session-id=${value}`)).statusCode, 503, code)
    t.equal((await watch.send(app, 'POST', '/logout', `session-id=${value}`)).statusCode, 503, code)
  }
  failing = undefined
  await watch.send(app, 'GET', '/read', `session-id=${value.slice(0, -1)}`)
  await watch.send(app, 'POST', '/logout', `session-id=${value}`)
  // Ids that never left the server (a regenerated session that could not be stored) count too.
  for (const { domain } of archive.calls) watch.remember(domain)
  const codes = watch.logs.lines.map((line) => (line['err'] as { code?: string } | undefined)?.code).filter(Boolean)
  t.same(new Set(codes), new Set(['FST_SESSION_ARCHIVE_FULL', 'FST_SESSION_ARCHIVE_DENIED', 'FST_SESSION_ARCHIVE_IO']), 'each failure is logged with its code')
  watch.check(t)
})
