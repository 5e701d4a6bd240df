import t, { type Test } from 'tap'
import type { FastifySessionsOptions } from '../lib/index.js'
import { addSessionRoutes, buildApp, setCookies } from './helpers/app.js'

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
  t.match(await attributes(t, { maxAge: 900, absoluteTimeout: 60 }), /^; Max-Age=60;/, 'or the absolute timeout when shorter')
})
