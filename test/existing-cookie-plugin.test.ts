import fastifyCookie, { type FastifyCookieOptions } from '@fastify/cookie'
import Fastify, { type FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import { fastifySessions } from '../lib/index.js'
import { addSessionRoutes, cookieValue, SECRET, setCookies } from './helpers/app.js'

const COOKIE_SECRET = 'the-app-s-own-cookie-signing-secret'

async function appWithCookiePlugin (t: Test, options: FastifyCookieOptions, order: 'before' | 'after'): Promise<FastifyInstance> {
  const app = Fastify()
  t.teardown(() => app.close())
  if (order === 'before') await app.register(fastifyCookie, options)
  await app.register(fastifySessions, { secret: SECRET })
  if (order === 'after') await app.register(fastifyCookie, options)
  addSessionRoutes(app)
  app.get('/both', async (request, reply) => {
    const parsed = request.cookies?.['theme'] ?? null
    reply.setCookie('theme', 'dark', { path: '/' })
    reply.setCookie('signed', 'yes', { path: '/', signed: true })
    request.session.set('user', 'both')
    return { parsed }
  })
  app.get('/unsign', async (request) => ({ value: request.unsignCookie(request.cookies['signed'] ?? '').value }))
  await app.ready()
  return app
}

const setups: Array<[string, FastifyCookieOptions]> = [
  ['with its parse hook', { secret: COOKIE_SECRET }],
  ['without its parse hook', { secret: COOKIE_SECRET, hook: false }],
  ['parsing in preHandler', { secret: COOKIE_SECRET, hook: 'preHandler' }]
]

for (const order of ['before', 'after'] as const) {
  for (const [name, options] of setups) {
    t.test(`with @fastify/cookie registered ${order} the plugin, ${name}, sessions and the app's own cookies, signed too, work side by side`, async (t) => {
      const app = await appWithCookiePlugin(t, options, order)
      const both = await app.inject({ url: '/both', cookies: { theme: 'light' } })
      t.equal(both.statusCode, 200)
      const cookies = setCookies(both)
      t.equal(cookies.length, 3)
      t.ok(cookies.some((cookie) => cookie.startsWith('theme=dark')))
      t.same(both.json(), { parsed: options.hook === false ? null : 'light' })
      const signed = cookieValue(both, 'signed')!
      t.not(signed, 'yes', "the app's cookie is signed with the app's own @fastify/cookie secret")
      if (options.hook !== false) t.same((await app.inject({ url: '/unsign', cookies: { signed } })).json(), { value: 'yes' })

      const token = cookieValue(both)!
      const read = await app.inject({ url: '/read', headers: { cookie: `theme=light; session=${token}` } })
      t.same(read.json(), { isNew: false, user: 'both' })
      t.same((await app.inject('/read')).json(), { isNew: true, user: null }, 'no cookie header at all')
    })
  }
}

t.test('without @fastify/cookie the plugin reads and writes its cookie itself and decorates nothing of it', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifySessions, { secret: SECRET })
  addSessionRoutes(app)
  await app.ready()
  t.notOk(app.hasReplyDecorator('setCookie'), 'reply.setCookie is left for @fastify/cookie to add, in either order')
  const token = cookieValue(await app.inject('/write'))!
  const read = await app.inject({ url: '/read', headers: { cookie: `a=1;\tsession=${token} ; session=other` } })
  t.same(read.json(), { isNew: false, user: 'ada' }, 'spaces and tabs around it are dropped, and the first cookie of a name wins')
})
