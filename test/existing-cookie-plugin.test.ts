import fastifyCookie, { type FastifyCookieOptions } from '@fastify/cookie'
import Fastify from 'fastify'
import t, { type Test } from 'tap'
import { fastifySessions } from '../lib/index.js'
import { addSessionRoutes, cookieValue, SECRET, setCookies } from './helpers/app.js'

async function appWithCookiePlugin (t: Test, options: FastifyCookieOptions | undefined): Promise<ReturnType<typeof Fastify>> {
  const app = Fastify()
  t.teardown(() => app.close())
  if (options !== undefined) await app.register(fastifyCookie, options)
  await app.register(fastifySessions, { secret: SECRET })
  addSessionRoutes(app)
  app.get('/both', async (request, reply) => {
    const parsed = request.cookies?.['theme'] ?? null
    reply.setCookie('theme', 'dark', { path: '/' })
    request.session.set('user', 'both')
    return { parsed }
  })
  return app
}

const setups: Array<[string, FastifyCookieOptions | undefined]> = [
  ['registered by the plugin', undefined],
  ['registered by the app', {}],
  ['registered by the app without its parse hook', { hook: false }],
  ['registered by the app, parsing in preHandler', { hook: 'preHandler' }]
]

for (const [name, options] of setups) {
  t.test(`with @fastify/cookie ${name}, sessions are read and written alongside other cookies`, async (t) => {
    const app = await appWithCookiePlugin(t, options)
    t.ok(app.hasDecorator('parseCookie'))
    const both = await app.inject({ url: '/both', cookies: { theme: 'light' } })
    t.equal(both.statusCode, 200)
    const cookies = setCookies(both)
    t.equal(cookies.length, 2)
    t.ok(cookies.some((cookie) => cookie.startsWith('theme=dark')))
    t.same(both.json(), { parsed: options?.hook === false ? null : 'light' })

    const token = cookieValue(both)!
    const read = await app.inject({ url: '/read', headers: { cookie: `theme=light; session=${token}` } })
    t.same(read.json(), { isNew: false, user: 'both' })
    t.same((await app.inject('/read')).json(), { isNew: true, user: null }, 'no cookie header at all')
  })
}
