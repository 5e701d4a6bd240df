import Fastify, { type FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import { fastifySessions, RedisArchive } from '../lib/index.js'
import { SECRET, setCookies } from './helpers/app.js'
import { Browser } from './helpers/browser.js'
import { REDIS_URL, useRedis } from './helpers/redis.js'

const BIG = 5000

const redis = await useRedis(t)
if (redis !== undefined) {
  const { prefix } = redis

  /** One cookie-mode instance whose sessions overflow into the shared Redis, through its own connection. */
  async function instance (t: Test, name: string): Promise<FastifyInstance> {
    const app = Fastify()
    t.teardown(() => app.close())
    await app.register(fastifySessions, { secret: SECRET, mode: 'cookie', archive: new RedisArchive({ url: REDIS_URL, prefix }) })
    app.post('/set', async (request) => {
      const { key, size } = request.query as { key: string, size: string }
      request.session.set(key, 'x'.repeat(Number(size)))
      return { served: name }
    })
    app.get('/read', async (request) => ({
      served: name,
      mode: request.session.mode,
      sizes: Object.fromEntries(request.session.keys().map((key) => [key, (request.session.get(key) as string).length]))
    }))
    return app
  }

  t.test('a session that outgrows its cookie on one instance is read on the other, and comes back to its cookie there', async (t) => {
    const a = await instance(t, 'A')
    const b = await instance(t, 'B')
    const browser = new Browser()
    await browser.visit(a, { method: 'POST', url: '/set?key=small&size=10' })
    await browser.visit(a, { method: 'POST', url: '/set?key=big&size=' + BIG })
    t.same(browser.names(), ['session.id'])
    t.same((await browser.visit(b, '/read')).json(), { served: 'B', mode: 'archive', sizes: { small: 10, big: BIG } })
    const back = await browser.visit(b, { method: 'POST', url: '/set?key=big&size=5' })
    t.match(setCookies(back).sort(), [/^session\.id=; Max-Age=0/, /^session=Fe26/])
    t.same((await browser.visit(a, '/read')).json(), { served: 'A', mode: 'cookie', sizes: { small: 10, big: 5 } })
    t.same(await redis.client.keys(`${prefix}*`), [], 'nothing is left in Redis')
  })

  t.test('a request to the other instance with the sealed cookie from before the move cannot bring its data back', async (t) => {
    const a = await instance(t, 'A')
    const b = await instance(t, 'B')
    const browser = new Browser()
    await browser.visit(a, { method: 'POST', url: '/set?key=cart&size=1' })
    const inFlight = browser.copy()
    await browser.visit(a, { method: 'POST', url: '/set?key=big&size=' + BIG })
    browser.take(await inFlight.send(b, { method: 'POST', url: '/set?key=cart&size=2' }))
    t.same(browser.names(), ['session', 'session.id'])
    const read = await browser.visit(b, '/read')
    t.same(read.json().sizes, { cart: 1, big: BIG }, 'the moved session wins on either instance')
    t.same(browser.names(), ['session.id'], 'and the stale sealed cookie is cleared')
  })

  t.test('two instances saving different keys of one moved session at once keep both changes', async (t) => {
    const a = await instance(t, 'A')
    const b = await instance(t, 'B')
    const browser = new Browser()
    await browser.visit(a, { method: 'POST', url: '/set?key=big&size=' + BIG })
    const other = browser.copy()
    await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? browser : other).send(i % 2 === 0 ? a : b, { method: 'POST', url: `/set?key=k${i}&size=${i + 1}` })))
    const sizes = (await browser.visit(a, '/read')).json().sizes
    t.same(sizes, { big: BIG, ...Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`k${i}`, i + 1])) })
  })
}
