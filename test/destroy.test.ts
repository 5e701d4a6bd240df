import t from 'tap'
import { MemoryArchive } from '../lib/index.js'
import { addSessionRoutes, buildApp, cookieValue, setCookies } from './helpers/app.js'

t.test('destroy() clears the cookie with the same name, path and domain, and empties the session', async (t) => {
  const app = await buildApp(t, { cookieName: 'sid', cookie: { path: '/app', domain: 'example.com', secure: true } })
  app.get('/app/write', async (request) => {
    request.session.set('user', 'ada')
    return { ok: true }
  })
  app.get('/app/logout', async (request) => {
    await request.session.destroy()
    return { isNew: request.session.isNew, user: request.session.get('user') ?? null }
  })
  const token = cookieValue(await app.inject('/app/write'), 'sid')!
  const response = await app.inject({ url: '/app/logout', cookies: { sid: token } })
  t.same(response.json(), { isNew: true, user: null })
  t.same(setCookies(response), ['sid=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Domain=example.com; Path=/app; HttpOnly; SameSite=Lax; Secure'])
})

t.test('destroy() then set() sends only the new session', async (t) => {
  const app = await buildApp(t)
  addSessionRoutes(app)
  app.get('/switch', async (request) => {
    await request.session.destroy()
    request.session.set('user', 'grace')
    return { ok: true }
  })
  const token = cookieValue(await app.inject('/write'))!
  const response = await app.inject({ url: '/switch', cookies: { session: token } })
  const cookies = setCookies(response)
  t.equal(cookies.length, 1)
  t.match(cookies[0], /^session=Fe26\.2\*/)
  t.same((await app.inject({ url: '/read', cookies: { session: cookieValue(response)! } })).json(), { isNew: false, user: 'grace' })
})

t.test('load() after destroy() finds nothing: the old cookie is gone for this request too', async (t) => {
  const app = await buildApp(t)
  addSessionRoutes(app)
  app.get('/destroy-load', async (request) => {
    await request.session.destroy()
    await request.session.load()
    return { isNew: request.session.isNew, user: request.session.get('user') ?? null }
  })
  const token = cookieValue(await app.inject('/write'))!
  const response = await app.inject({ url: '/destroy-load', cookies: { session: token } })
  t.same(response.json(), { isNew: true, user: null })
  t.match(setCookies(response), [/^session=; Max-Age=0;/])
})

t.test('destroy() on a request that brought no session sends no cookie, so another site cannot log a user out with it', async (t) => {
  for (const options of [{}, { mode: 'archive' as const, archive: new MemoryArchive() }]) {
    const app = await buildApp(t, options)
    app.post('/logout', async (request) => {
      await request.session.destroy()
      return { isNew: request.session.isNew }
    })
    const response = await app.inject({ method: 'POST', url: '/logout' })
    t.same(response.json(), { isNew: true })
    t.same(setCookies(response), [], `nothing to clear (${options.mode ?? 'cookie'} mode)`)
  }
})
