import t, { type Test } from 'tap'
import { MemoryArchive, type FastifySessionsOptions } from '../lib/index.js'
import { addSessionRoutes, buildApp, cookieValue, setCookies } from './helpers/app.js'
import { advanceClock } from './helpers/clock.js'

/** The attributes (everything after the value) of the cookie `/write` sends. */
async function attributes (t: Test, options: Partial<FastifySessionsOptions>, https = false): Promise<string> {
  const app = await buildApp(t, options, { trustProxy: true })
  addSessionRoutes(app)
  const headers = https ? { 'x-forwarded-proto': 'https' } : {}
  const cookie = setCookies(await app.inject({ url: '/write', headers }))[0]!
  return cookie.slice(cookie.indexOf(';'))
}

t.test('path, domain, httpOnly, sameSite and partitioned are written as configured', async (t) => {
  t.equal(await attributes(t, { cookie: { path: '/app', domain: 'example.com', httpOnly: false, sameSite: 'strict', secure: false } }),
    '; Max-Age=86400; Domain=example.com; Path=/app; SameSite=Strict')
  t.equal(await attributes(t, { cookie: { sameSite: 'none', partitioned: true, secure: true } }),
    '; Max-Age=86400; Path=/; HttpOnly; Partitioned; SameSite=None; Secure')
})

t.test("secure true always marks the cookie Secure, false never, 'auto' over https only", async (t) => {
  t.match(await attributes(t, { cookie: { secure: true } }), /; Secure$/)
  t.notMatch(await attributes(t, { cookie: { secure: false } }, true), /Secure/)
  t.notMatch(await attributes(t, { cookie: { secure: 'auto' } }), /Secure/)
  t.match(await attributes(t, { cookie: { secure: 'auto' } }, true), /; Secure$/)
})

t.test("'auto' ignores X-Forwarded-Proto unless the app trusts its proxy", async (t) => {
  const app = await buildApp(t)
  addSessionRoutes(app)
  const cookie = setCookies(await app.inject({ url: '/write', headers: { 'x-forwarded-proto': 'https' } }))[0]!
  t.notMatch(cookie, /Secure/)
})

t.test('Max-Age is maxAge for a new session', async (t) => {
  t.match(await attributes(t, { maxAge: 90 }), /^; Max-Age=90;/)
})

t.test('Max-Age is the time left before absoluteTimeout when that is shorter than maxAge', async (t) => {
  const app = await buildApp(t, { maxAge: 3600, absoluteTimeout: 3600 })
  addSessionRoutes(app)
  const session = cookieValue(await app.inject('/write'))!
  advanceClock(t, 3540 * 1000)
  const cookie = setCookies(await app.inject({ url: '/write?user=bob', cookies: { session } }))[0]!
  t.match(cookie, /; Max-Age=60;/)
})

t.test('persistent false sends the session cookie without Max-Age or Expires, in both modes', async (t) => {
  for (const mode of ['cookie', 'archive'] as const) {
    const app = await buildApp(t, { mode, archive: new MemoryArchive(), cookie: { persistent: false } })
    addSessionRoutes(app)
    const cookie = setCookies(await app.inject('/write'))[0]!
    t.notMatch(cookie, /Max-Age|Expires/i, `${mode} mode`)
    t.match(cookie, /; Path=\/; HttpOnly; SameSite=Lax$/, `${mode} mode keeps its other attributes`)
  }
})

t.test('persistent false still ends the session on the server after maxAge', async (t) => {
  const app = await buildApp(t, { maxAge: 60, cookie: { persistent: false } })
  addSessionRoutes(app)
  const session = cookieValue(await app.inject('/write'))!
  t.same((await app.inject({ url: '/read', cookies: { session } })).json(), { isNew: false, user: 'ada' })
  advanceClock(t, 61 * 1000)
  t.same((await app.inject({ url: '/read', cookies: { session } })).json(), { isNew: true, user: null })
})

t.test('persistent false still clears with Max-Age=0, in both modes', async (t) => {
  for (const mode of ['cookie', 'archive'] as const) {
    const app = await buildApp(t, { mode, archive: new MemoryArchive(), cookie: { persistent: false } })
    addSessionRoutes(app)
    app.get('/logout', async (request) => {
      await request.session.destroy()
      return { ok: true }
    })
    const name = mode === 'cookie' ? 'session' : 'session-id'
    const value = cookieValue(await app.inject('/write'), name)!
    const cleared = setCookies(await app.inject({ url: '/logout', cookies: { [name]: value } }))
    t.match(cleared, [new RegExp(`^${name}=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; `)], `${mode} mode`)
  }
})
