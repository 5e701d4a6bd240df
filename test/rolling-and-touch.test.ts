import t from 'tap'
import { addSessionRoutes, buildApp, cookieValue, LogCapture, setCookies } from './helpers/app.js'
import { advanceClock } from './helpers/clock.js'
import { ironUnseal } from './helpers/iron.js'

t.test('without rolling, neither a read nor an untouched route sends a cookie', async (t) => {
  const app = await buildApp(t)
  addSessionRoutes(app)
  const token = cookieValue(await app.inject('/write'))!
  t.same(setCookies(await app.inject({ url: '/read', cookies: { session: token } })), [])
  t.same(setCookies(await app.inject({ url: '/untouched', cookies: { session: token } })), [])
  t.same(setCookies(await app.inject('/read')), [], 'nor does a fresh session that was only read')
})

t.test('rolling re-issues the cookie of an existing session on every request, read or not, with a new issue time', async (t) => {
  const app = await buildApp(t, { rolling: true })
  addSessionRoutes(app)
  const token = cookieValue(await app.inject('/write'))!
  const { c, t: issued } = await ironUnseal(token) as { c: number, t: number }
  advanceClock(t, 5000)
  for (const url of ['/read', '/untouched']) {
    const response = await app.inject({ url, cookies: { session: token } })
    t.equal(setCookies(response).length, 1, `${url} re-issues`)
    const payload = await ironUnseal(cookieValue(response)!) as { c: number, t: number, d: unknown }
    t.equal(payload.c, c, 'same creation time')
    t.ok(payload.t >= issued + 5000, 'a later issue time')
    t.same(payload.d, { user: 'ada' })
  }
})

t.test('rolling sends nothing for a request without a session, and only a clearing cookie for one that is not accepted', async (t) => {
  const logs = new LogCapture()
  const app = await buildApp(t, { rolling: true }, logs.server)
  addSessionRoutes(app)
  t.same(setCookies(await app.inject('/untouched')), [])
  t.same(setCookies(await app.inject('/read')), [])
  t.match(setCookies(await app.inject({ url: '/untouched', cookies: { session: 'Fe26.2**bad' } })), [/^session=; Max-Age=0;/])
  t.equal(logs.withCode('FST_SESSION_COOKIE_REJECTED').length, 1, 'the untouched route decoded the cookie to roll it')
})

t.test('touch() re-issues the cookie without rolling, restarting the idle timeout', async (t) => {
  const app = await buildApp(t, { maxAge: 60 })
  addSessionRoutes(app)
  app.get('/touch', async (request) => {
    request.session.touch()
    return { changed: request.session.changed }
  })
  const token = cookieValue(await app.inject('/write'))!
  advanceClock(t, 50_000)
  const touched = await app.inject({ url: '/touch', cookies: { session: token } })
  t.same(touched.json(), { changed: false }, 'a touch is not a change')
  t.match(setCookies(touched), [/; Max-Age=60;/])
  advanceClock(t, 50_000)
  t.same((await app.inject({ url: '/read', cookies: { session: token } })).json(), { isNew: true, user: null }, 'the old cookie is idle')
  t.same((await app.inject({ url: '/read', cookies: { session: cookieValue(touched)! } })).json(), { isNew: false, user: 'ada' }, 'the touched one is not')
})

t.test('touch() on a new session starts it', async (t) => {
  const app = await buildApp(t)
  app.get('/touch', async (request) => {
    request.session.touch()
    return { ok: true }
  })
  const response = await app.inject('/touch')
  t.match(await ironUnseal(cookieValue(response)!), { d: {} })
})

t.test('rolling an existing session that no longer fits the size limit answers 500 without a cookie', async (t) => {
  const writer = await buildApp(t)
  writer.get('/big', async (request) => {
    request.session.set('big', 'x'.repeat(600))
    return { ok: true }
  })
  const token = cookieValue(await writer.inject('/big'))!
  const app = await buildApp(t, { rolling: true, cookieSize: { max: 500 } })
  addSessionRoutes(app)
  const response = await app.inject({ url: '/untouched', cookies: { session: token } })
  t.equal(response.statusCode, 500)
  t.equal(response.json().code, 'FST_SESSION_COOKIE_TOO_LARGE')
  t.same(setCookies(response), [])
})
