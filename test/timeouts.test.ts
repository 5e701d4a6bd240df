import t, { type Test } from 'tap'
import { addSessionRoutes, buildApp, cookieValue, LogCapture, setCookies } from './helpers/app.js'
import { advanceClock } from './helpers/clock.js'
import { ironSeal, ironUnseal, pluginSeal, sessionPayload } from './helpers/iron.js'

const MAX_AGE = 60
const ABSOLUTE = 600

async function timedApp (t: Test): Promise<{ read: (token: string) => Promise<unknown>, logs: LogCapture, app: Awaited<ReturnType<typeof buildApp>> }> {
  const logs = new LogCapture()
  const app = await buildApp(t, { maxAge: MAX_AGE, absoluteTimeout: ABSOLUTE }, logs.server)
  addSessionRoutes(app)
  const read = async (token: string): Promise<unknown> => {
    const response = await app.inject({ url: '/read', cookies: { session: token } })
    t.equal(response.statusCode, 200)
    const body = response.json() as { isNew: boolean }
    if (body.isNew) t.match(setCookies(response), [/^session=; Max-Age=0;/], 'a rejected cookie is cleared, once')
    else t.same(setCookies(response), [], 'an accepted cookie that was only read is not sent again')
    return body
  }
  return { read, logs, app }
}

t.test('a session idle for maxAge seconds is a fresh session, logged at debug', async (t) => {
  const { read, logs } = await timedApp(t)
  const now = Date.now()
  const fresh = pluginSeal(sessionPayload({ user: 'ada' }, { created: now - 100_000, issued: now - MAX_AGE * 1000 + 5000 }))
  t.same(await read(fresh), { isNew: false, user: 'ada' }, 'idle for less than maxAge')
  t.same(logs.withCode('FST_SESSION_COOKIE_REJECTED'), [])
  const idle = pluginSeal(sessionPayload({ user: 'ada' }, { created: now - 100_000, issued: now - MAX_AGE * 1000 }))
  t.same(await read(idle), { isNew: true, user: null }, 'idle for maxAge')
  t.match(logs.withCode('FST_SESSION_COOKIE_REJECTED'), [{ level: 20 }])
})

t.test('a session older than absoluteTimeout is a fresh session even when it was just issued', async (t) => {
  const { read, logs } = await timedApp(t)
  const now = Date.now()
  const young = pluginSeal(sessionPayload({ user: 'ada' }, { created: now - ABSOLUTE * 1000 + 5000, issued: now }))
  t.same(await read(young), { isNew: false, user: 'ada' })
  const old = pluginSeal(sessionPayload({ user: 'ada' }, { created: now - ABSOLUTE * 1000, issued: now }))
  t.same(await read(old), { isNew: true, user: null })
  const rejected = logs.withCode('FST_SESSION_COOKIE_REJECTED')
  t.equal(rejected.length, 1)
  t.equal(rejected[0]!['level'], 20)
})

t.test('a token whose iron expiration has passed is a fresh session, whatever its payload says', async (t) => {
  const { read, logs } = await timedApp(t)
  const expired = await ironSeal(sessionPayload({ user: 'ada' }), undefined, { ttl: 1000, localtimeOffsetMsec: -10_000 })
  t.same(await read(expired), { isNew: true, user: null })
  t.match(logs.withCode('FST_SESSION_COOKIE_REJECTED'), [{ level: 20 }])
})

t.test('a cookie the plugin issued expires on the server after maxAge, even if the browser keeps sending it', async (t) => {
  const { app, read, logs } = await timedApp(t)
  const token = cookieValue(await app.inject('/write'))!
  t.same(await read(token), { isNew: false, user: 'ada' }, 'accepted while fresh')
  advanceClock(t, MAX_AGE * 1000)
  t.same(await read(token), { isNew: true, user: null }, 'refused once maxAge has passed, though it was accepted before')
  t.equal(logs.withCode('FST_SESSION_COOKIE_REJECTED').length, 1)
})

t.test('activity slides the idle timeout but never the absolute one', async (t) => {
  const { app, read } = await timedApp(t)
  app.get('/touch', async (request) => {
    request.session.touch()
    return { ok: true }
  })
  let token = cookieValue(await app.inject('/write'))!
  const { c: created } = await ironUnseal(token) as { c: number }
  for (let elapsed = 0; elapsed + 50 < ABSOLUTE; elapsed += 50) {
    advanceClock(t, 50_000)
    token = cookieValue(await app.inject({ url: '/touch', cookies: { session: token } }))!
    t.equal((await ironUnseal(token) as { c: number }).c, created, 'a touch keeps the creation time')
  }
  t.same(await read(token), { isNew: false, user: 'ada' }, 'kept alive by touches')
  advanceClock(t, 50_000)
  t.same(await read(token), { isNew: true, user: null }, 'ended by the absolute timeout')
})

t.test('the cookie and the seal never outlive the absolute timeout', async (t) => {
  const { app } = await timedApp(t)
  const now = Date.now()
  const created = now - (ABSOLUTE - 30) * 1000
  const token = await ironSeal(sessionPayload({ user: 'ada' }, { created }))
  const response = await app.inject({ url: '/write?user=grace', cookies: { session: token } })
  t.match(setCookies(response), [/; Max-Age=30;/])
  const expiration = Number(cookieValue(response)!.split('*')[5])
  t.equal(expiration, created + ABSOLUTE * 1000, 'the iron expiration is the end of the absolute timeout')
})
