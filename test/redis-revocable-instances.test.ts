import Fastify, { type FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import { REVOCATION_CHECK_MS } from '../lib/cookie-mode.js'
import { fastifySessions, RedisArchive } from '../lib/index.js'
import { cookieValue, SECRET } from './helpers/app.js'
import { advanceClock } from './helpers/clock.js'
import { REDIS_URL, useRedis } from './helpers/redis.js'

const redis = await useRedis(t)
if (redis !== undefined) {
  const { prefix } = redis

  /** One instance in revocable cookie mode, with its own connection to the shared Redis. */
  async function instance (t: Test): Promise<FastifyInstance> {
    const app = Fastify()
    t.teardown(() => app.close())
    await app.register(fastifySessions, { secret: SECRET, mode: 'cookie', revocable: true, archive: new RedisArchive({ url: REDIS_URL, prefix }) })
    app.post('/login', async (request) => {
      await request.session.regenerate()
      request.session.set('user', 'ada')
      request.session.bindUser('ada')
      return 'ok'
    })
    app.get('/', async (request) => ({ user: request.session.get('user') ?? null }))
    app.post('/logout', async (request) => { await request.session.destroy(); return 'ok' })
    return app
  }

  t.test('revocable cookie mode on two instances: a token revoked on A is refused on A at once and on B within REVOCATION_CHECK_MS', async (t) => {
    const a = await instance(t)
    const b = await instance(t)
    const token = cookieValue(await a.inject({ method: 'POST', url: '/login' }))!
    t.same((await b.inject({ url: '/', cookies: { session: token } })).json(), { user: 'ada' }, 'B reads the session A sealed')
    await a.inject({ method: 'POST', url: '/logout', cookies: { session: token } })
    t.same((await a.inject({ url: '/', cookies: { session: token } })).json(), { user: null })
    advanceClock(t, REVOCATION_CHECK_MS)
    t.same((await b.inject({ url: '/', cookies: { session: token } })).json(), { user: null })
  })

  t.test('revocable cookie mode on two instances: "sign out other devices" on A ends a device that B served', async (t) => {
    const a = await instance(t)
    const b = await instance(t)
    const phone = cookieValue(await b.inject({ method: 'POST', url: '/login' }))!
    const laptop = cookieValue(await a.inject({ method: 'POST', url: '/login' }))!
    const listed = await a.sessions.list('ada')
    t.equal(listed.length, 2, 'A lists the session B created')
    t.ok(listed.every((session) => session.mode === 'cookie'))
    const here = await a.sessions.decode(`session=${laptop}`)
    t.equal(await a.sessions.revokeUser('ada', { except: here!.handle! }), 1)
    advanceClock(t, REVOCATION_CHECK_MS)
    t.same((await b.inject({ url: '/', cookies: { session: phone } })).json(), { user: null }, 'the phone is signed out on B too')
    t.same((await b.inject({ url: '/', cookies: { session: laptop } })).json(), { user: 'ada' }, 'the laptop stays')
  })
}
