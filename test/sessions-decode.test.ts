import t from 'tap'
import { MemoryArchive } from '../lib/index.js'
import { buildApp, cookieValue } from './helpers/app.js'

t.test('app.sessions.decode() reads the session a Cookie header carries, outside any route, in both modes', async (t) => {
  const archive = new MemoryArchive()
  const app = await buildApp(t, { mode: 'archive', archive })
  app.post('/login', { config: { session: 'cookie' } }, async (request) => { request.session.set('user', 'ada'); return 'ok' })
  app.post('/login-archive', async (request) => { request.session.set('user', 'bob'); return 'ok' })
  app.get('/read', async (request) => ({ user: request.session.get('user') ?? null, seen: request.session.get('seen') ?? null }))
  const token = cookieValue(await app.inject({ method: 'POST', url: '/login' }))!
  const id = cookieValue(await app.inject({ method: 'POST', url: '/login-archive' }), 'session-id')!

  const sealed = await app.sessions.decode(`other=1; session=${token}`, { mode: 'cookie' })
  t.equal(sealed?.get('user'), 'ada')
  t.equal(sealed?.mode, 'cookie')
  const archived = await app.sessions.decode(`session-id=${id}`)
  t.equal(archived?.get('user'), 'bob', 'the plugin mode is the default')
  t.equal(await app.sessions.decode('session-id=forged.value'), null, 'a cookie that opens nothing is null')
  t.equal(await app.sessions.decode(undefined), null, 'and so is no header')
  t.equal(await app.sessions.decode(''), null)

  archived!.set('seen', true)
  await archived!.save()
  t.same((await app.inject({ url: '/read', cookies: { 'session-id': id } })).json(), { user: 'bob', seen: true }, 'an archive-mode save keeps its id and needs no cookie')

  sealed!.set('seen', true)
  await t.rejects(sealed!.save(), { code: 'FST_SESSION_HEADERS_SENT' }, 'a cookie-mode save has nowhere to send its cookie')
  await archived!.regenerate()
  await t.rejects(archived!.save(), { code: 'FST_SESSION_HEADERS_SENT' }, 'nor has a new id')
  t.same((await app.inject({ url: '/read', cookies: { 'session-id': id } })).json(), { user: 'bob', seen: true }, 'and nothing was stored for it')
})

t.test('app.sessions.decode() refuses arguments it cannot use', async (t) => {
  const app = await buildApp(t)
  await t.rejects(app.sessions.decode(42 as never), { code: 'FST_SESSION_INVALID_ARGUMENT' })
  await t.rejects(app.sessions.decode('a=1', { mode: 'redis' as never }), { code: 'FST_SESSION_INVALID_ARGUMENT' })
})
