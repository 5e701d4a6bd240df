import t from 'tap'
import { MemoryArchive } from '../lib/archives/memory.js'
import { buildApp, cookieValue, setCookies } from './helpers/app.js'

t.test('routes choose their mode; each mode has its own cookie and never reads the other', async (t) => {
  const app = await buildApp(t, { mode: 'cookie', archive: new MemoryArchive() })
  app.post('/cookie', async (request) => { request.session.set('where', 'cookie'); return request.session.mode })
  app.post('/archive', { config: { session: 'archive' } }, async (request) => { request.session.set('where', 'archive'); return request.session.mode })
  app.get('/cookie', async (request) => ({ where: request.session.get('where') ?? null }))
  app.get('/archive', { config: { session: 'archive' } }, async (request) => ({ where: request.session.get('where') ?? null }))

  const sealed = await app.inject({ method: 'POST', url: '/cookie' })
  t.equal(sealed.body, 'cookie')
  t.ok(cookieValue(sealed, 'session'))
  const archived = await app.inject({ method: 'POST', url: '/archive' })
  t.equal(archived.body, 'archive')
  t.ok(cookieValue(archived, 'session-id'))
  t.notOk(cookieValue(archived, 'session'), 'the archive route sets only the id cookie')

  const cookies = { session: cookieValue(sealed, 'session')!, 'session-id': cookieValue(archived, 'session-id')! }
  t.same((await app.inject({ url: '/cookie', cookies })).json(), { where: 'cookie' })
  t.same((await app.inject({ url: '/archive', cookies })).json(), { where: 'archive' })
  t.same((await app.inject({ url: '/archive', cookies: { session: cookies.session } })).json(), { where: null }, 'the sealed cookie means nothing to an archive route')
  t.same((await app.inject({ url: '/cookie', cookies: { 'session-id': cookies['session-id'] } })).json(), { where: null }, 'nor the id cookie to a cookie route')
})

t.test('mode: archive for the plugin, cookie for one route', async (t) => {
  const app = await buildApp(t, { mode: 'archive', archive: new MemoryArchive(), idCookieName: 'sid' })
  app.post('/a', async (request) => { request.session.set('x', 1); return request.session.mode })
  app.post('/c', { config: { session: 'cookie' } }, async (request) => { request.session.set('x', 1); return request.session.mode })
  const a = await app.inject({ method: 'POST', url: '/a' })
  t.equal(a.body, 'archive')
  t.match(setCookies(a), [/^sid=/])
  const c = await app.inject({ method: 'POST', url: '/c' })
  t.equal(c.body, 'cookie')
  t.match(setCookies(c), [/^session=Fe26\.2\*/])
})

t.test('an invalid config.session fails route registration with FST_SESSION_INVALID_OPTION', async (t) => {
  const app = await buildApp(t)
  t.throws(() => app.get('/x', { config: { session: 'redis' as 'archive' } }, async () => 'x'), { code: 'FST_SESSION_INVALID_OPTION' })
})
