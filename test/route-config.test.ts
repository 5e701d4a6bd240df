import t from 'tap'
import { addSessionRoutes, buildApp, cookieValue, LogCapture, setCookies } from './helpers/app.js'

t.test('a route with config.session false has no session, decodes nothing and sends no cookie', async (t) => {
  const logs = new LogCapture()
  const app = await buildApp(t, { rolling: true }, logs.server)
  addSessionRoutes(app)
  app.get('/health', { config: { session: false } }, async () => ({ ok: true }))
  app.get('/misuse', { config: { session: false } }, async (request) => request.session.get('user'))
  const token = cookieValue(await app.inject('/write'))!

  const valid = await app.inject({ url: '/health', cookies: { session: token } })
  t.equal(valid.statusCode, 200)
  t.same(setCookies(valid), [], 'no cookie, though the session would roll')
  const misuse = await app.inject({ url: '/misuse', cookies: { session: token } })
  t.equal(misuse.statusCode, 500)
  t.equal(misuse.json().code, 'FST_SESSION_NOT_ENABLED', 'reading request.session there is a clear error, not a TypeError on null')
  t.match(misuse.json().message, /config: \{ session: false \}/)

  const bad = await app.inject({ url: '/health', cookies: { session: 'Fe26.2**garbage' } })
  t.same(setCookies(bad), [])
  t.same(logs.withCode('FST_SESSION_COOKIE_REJECTED'), [], 'a bad cookie is not even looked at')

  const other = await app.inject({ url: '/read', cookies: { session: token } })
  t.same(other.json(), { isNew: false, user: 'ada' }, 'other routes keep their sessions')
})

t.test("a route with config.session 'cookie' has a cookie session", async (t) => {
  const app = await buildApp(t)
  app.get('/explicit', { config: { session: 'cookie' } }, async (request) => {
    request.session.set('user', 'ada')
    return { mode: request.session.mode }
  })
  const response = await app.inject('/explicit')
  t.same(response.json(), { mode: 'cookie' })
  t.equal(setCookies(response).length, 1)
})

t.test('an invalid config.session fails the route with FST_SESSION_INVALID_OPTION', async (t) => {
  for (const session of ['redis', true, 0, null]) {
    const app = await buildApp(t)
    t.throws(() => app.route({
      method: ['GET', 'POST'],
      url: '/bad',
      config: { session: session as false },
      handler: async () => 'never'
    }), { code: 'FST_SESSION_INVALID_OPTION' }, String(session))
  }
})
