import fastifyCookie from '@fastify/cookie'
import t from 'tap'
import { buildApp, cookieValue, setCookies } from './helpers/app.js'

t.test('an explicit save() beside reply.setCookie() sends the session cookie once', async (t) => {
  const app = await buildApp(t)
  await app.register(fastifyCookie)
  app.get('/', async (request, reply) => {
    request.session.set('user', 'ada')
    await request.session.save()
    reply.setCookie('theme', 'dark')
    return { ok: true }
  })
  app.get('/logout', async (request, reply) => {
    await request.session.destroy()
    reply.setCookie('theme', 'dark')
    return { ok: true }
  })
  const saved = await app.inject('/')
  t.equal(setCookies(saved).filter((c) => c.startsWith('session=')).length, 1)
  t.equal(setCookies(await app.inject({ url: '/logout', cookies: { session: cookieValue(saved)! } })).filter((c) => c.startsWith('session=')).length, 1)
})

t.test('a cookie the handler put on the raw response is sent beside the session cookie', async (t) => {
  const app = await buildApp(t)
  app.get('/', async (request, reply) => {
    reply.raw.setHeader('set-cookie', 'theme=dark')
    request.session.set('user', 'ada')
    return { ok: true }
  })
  const cookies = setCookies(await app.inject('/'))
  t.ok(cookies.includes('theme=dark'))
  t.equal(cookies.filter((c) => c.startsWith('session=')).length, 1)
})

t.test('cookies a handler put on the raw response survive an explicit save()', async (t) => {
  const app = await buildApp(t)
  app.get('/', async (request, reply) => {
    reply.raw.setHeader('set-cookie', 'theme=dark')
    request.session.set('user', 'ada')
    await request.session.save()
    return { ok: true }
  })
  t.ok(setCookies(await app.inject('/')).includes('theme=dark'))
})
