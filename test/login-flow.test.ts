import t from 'tap'
import { buildApp, cookieValue, setCookies } from './helpers/app.js'

t.test('a login, a read, a flash and a logout, as the README shows them', async (t) => {
  const app = await buildApp(t)
  app.post('/login', async (request) => {
    await request.session.regenerate()
    request.session.set('user', { id: '42', name: 'Ada' })
    request.session.flash('Welcome back!')
    return { ok: true }
  })
  app.get('/', async (request) => ({ user: request.session.get('user') ?? null, messages: request.session.flashes() }))
  app.post('/logout', async (request) => {
    await request.session.destroy()
    return { ok: true }
  })

  const login = await app.inject({ method: 'POST', url: '/login' })
  t.equal(login.statusCode, 200)
  const token = cookieValue(login)
  t.match(token, /^Fe26\.2\*/, 'the cookie value is an iron token')

  const home = await app.inject({ url: '/', cookies: { session: token! } })
  t.same(home.json(), { user: { id: '42', name: 'Ada' }, messages: ['Welcome back!'] })

  const again = await app.inject({ url: '/', cookies: { session: cookieValue(home)! } })
  t.same(again.json(), { user: { id: '42', name: 'Ada' }, messages: [] }, 'a flash is read once')
  t.same(setCookies(again), [], 'a read sends no cookie')

  const logout = await app.inject({ method: 'POST', url: '/logout', cookies: { session: token! } })
  t.match(setCookies(logout), [/^session=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=\/; HttpOnly; SameSite=Lax$/])
})
