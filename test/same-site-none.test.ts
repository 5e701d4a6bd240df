import t from 'tap'
import { MemoryArchive } from '../lib/index.js'
import { addSessionRoutes, buildApp, cookieValue, LogCapture, setCookies } from './helpers/app.js'

// The downgrade warning is logged once per process: this file's tests run in
// order, and the first request over plain HTTP is the one that logs it.

const HTTPS = { 'x-forwarded-proto': 'https' }

t.test("sameSite 'none' with secure 'auto' goes out as SameSite=Lax over plain HTTP, logging one warning per process", async (t) => {
  const logs = new LogCapture()
  for (const mode of ['cookie', 'archive'] as const) {
    const app = await buildApp(t, { mode, archive: new MemoryArchive(), cookie: { sameSite: 'none' } }, { ...logs.server, trustProxy: true })
    addSessionRoutes(app)
    for (let i = 0; i < 3; i++) {
      const cookie = setCookies(await app.inject('/write'))[0]!
      t.match(cookie, /; SameSite=Lax$/, `${mode} mode, request ${i + 1}`)
      t.notMatch(cookie, /SameSite=None|Secure/, `${mode} mode, request ${i + 1}`)
    }
  }
  const warnings = logs.withCode('FST_SESSION_SAMESITE_DOWNGRADED')
  t.equal(warnings.length, 1, 'one warning in all')
  t.match(warnings[0], { level: 40, cookie: 'session' }, 'a warning, for the first cookie sent')
})

t.test("sameSite 'none' with secure 'auto' stays SameSite=None; Secure over HTTPS", async (t) => {
  for (const mode of ['cookie', 'archive'] as const) {
    const app = await buildApp(t, { mode, archive: new MemoryArchive(), cookie: { sameSite: 'none' } }, { trustProxy: true })
    addSessionRoutes(app)
    const cookie = setCookies(await app.inject({ url: '/write', headers: HTTPS }))[0]!
    t.match(cookie, /; SameSite=None; Secure$/, `${mode} mode`)
  }
})

t.test("sameSite 'none' with secure true stays SameSite=None; Secure over plain HTTP too", async (t) => {
  const app = await buildApp(t, { cookie: { sameSite: 'none', secure: true } })
  addSessionRoutes(app)
  t.match(setCookies(await app.inject('/write'))[0], /; SameSite=None; Secure$/)
})

t.test('the clearing cookie is downgraded the same way, so that browsers accept it', async (t) => {
  const app = await buildApp(t, { cookie: { sameSite: 'none' } }, { trustProxy: true })
  addSessionRoutes(app)
  app.get('/logout', async (request) => {
    await request.session.destroy()
    return { ok: true }
  })
  const session = cookieValue(await app.inject('/write'))!
  t.match(setCookies(await app.inject({ url: '/logout', cookies: { session } }))[0], /^session=; Max-Age=0; .*; SameSite=Lax$/)
  t.match(setCookies(await app.inject({ url: '/logout', cookies: { session }, headers: HTTPS }))[0], /^session=; Max-Age=0; .*; SameSite=None; Secure$/)
})

t.test('other sameSite values are never changed over plain HTTP, and log nothing', async (t) => {
  const logs = new LogCapture()
  for (const sameSite of ['lax', 'strict'] as const) {
    const app = await buildApp(t, { cookie: { sameSite } }, logs.server)
    addSessionRoutes(app)
    t.match(setCookies(await app.inject('/write'))[0], new RegExp(`; SameSite=${sameSite === 'lax' ? 'Lax' : 'Strict'}$`))
  }
  t.same(logs.withCode('FST_SESSION_SAMESITE_DOWNGRADED'), [])
})
