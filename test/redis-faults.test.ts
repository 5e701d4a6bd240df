import Fastify from 'fastify'
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { fastifySessions, RedisArchive } from '../lib/index.js'
import { cookieValue, SECRET, setCookies } from './helpers/app.js'
import { hasRedisServer, SpareRedis, useRedis } from './helpers/redis.js'

const COMMAND_TIMEOUT_MS = 300

async function sessionApp (t: Test, archive: RedisArchive) {
  const app = Fastify()
  t.teardown(() => app.close())
  app.register(fastifySessions, { secret: SECRET, mode: 'archive', archive })
  app.post('/visit', async (request) => {
    const visits = (request.session.get('visits') as number | undefined ?? 0) + 1
    request.session.set('visits', visits)
    return { visits, isNew: request.session.isNew }
  })
  app.get('/health', { config: { session: false } }, async () => 'ok')
  return app
}

/** Retries `attempt` until it returns true or `ms` pass. */
async function eventually (attempt: () => Promise<boolean>, ms: number): Promise<boolean> {
  const until = Date.now() + ms
  while (Date.now() < until) {
    if (await attempt()) return true
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return false
}

const redis = await useRedis(t)
if (redis !== undefined && !hasRedisServer()) {
  if (process.env['CI'] === 'true') t.fail('the Redis fault tests need redis-server on the PATH under CI')
  else t.plan(0, 'no redis-server on the PATH to start and stop for the fault tests')
} else if (redis !== undefined) {
  t.test('Redis down at start: registration fails fast with FST_SESSION_ARCHIVE_UNAVAILABLE', async (t) => {
    const spare = await SpareRedis.create(t)
    const app = Fastify()
    app.register(fastifySessions, { secret: SECRET, mode: 'archive', archive: new RedisArchive({ url: spare.url, commandTimeoutMs: COMMAND_TIMEOUT_MS }) })
    const started = Date.now()
    await t.rejects(async () => { await app.ready() }, { code: 'FST_SESSION_ARCHIVE_UNAVAILABLE' })
    t.ok(Date.now() - started < 5000, 'it does not hang')
  })

  t.test('Redis down at start with lazyConnect: the app starts, answers 503 until Redis is up, then works', async (t) => {
    const spare = await SpareRedis.create(t)
    const app = await sessionApp(t, new RedisArchive({ url: spare.url, commandTimeoutMs: COMMAND_TIMEOUT_MS, lazyConnect: true }))
    await app.ready()
    const down = await app.inject({ method: 'POST', url: '/visit' })
    t.equal(down.statusCode, 503)
    t.equal(down.json().code, 'FST_SESSION_ARCHIVE_UNAVAILABLE')
    t.same(setCookies(down), [], 'no session is minted')
    t.equal((await app.inject({ url: '/health' })).statusCode, 200, 'routes without sessions are unaffected')
    await spare.start()
    t.ok(await eventually(async () => (await app.inject({ method: 'POST', url: '/visit' })).statusCode === 200, 10_000), 'recovers once Redis answers')
  })

  t.test('a client passed in that cannot reach Redis fails registration too', async (t) => {
    const spare = await SpareRedis.create(t)
    const client = new Redis(spare.url, { lazyConnect: true, enableOfflineQueue: false, retryStrategy: () => null })
    client.on('error', () => {})
    t.teardown(() => client.disconnect())
    const app = Fastify()
    app.register(fastifySessions, { secret: SECRET, mode: 'archive', archive: new RedisArchive({ client }) })
    await t.rejects(async () => { await app.ready() }, { code: 'FST_SESSION_ARCHIVE_UNAVAILABLE' })
  })

  t.test('closing an archive whose Redis is down ends its client anyway', async (t) => {
    const spare = await SpareRedis.create(t)
    const archive = new RedisArchive({ url: spare.url, commandTimeoutMs: COMMAND_TIMEOUT_MS, lazyConnect: true })
    await archive.ready()
    await archive.close()
    await t.rejects(archive.get('AnyDomain_0123456789', 'session'), 'its client no longer answers')
    await archive.close()
    await spare.start()
    await t.rejects(archive.get('AnyDomain_0123456789', 'session'), 'nor reconnects once Redis is back')
  })

  t.test('Redis dies mid-run: bounded 503s with no cookie; back empty: fresh sessions, no restart', async (t) => {
    const spare = await SpareRedis.create(t)
    await spare.start()
    const app = await sessionApp(t, new RedisArchive({ url: spare.url, commandTimeoutMs: COMMAND_TIMEOUT_MS }))
    const first = await app.inject({ method: 'POST', url: '/visit' })
    t.same(first.json(), { visits: 1, isNew: true })
    const cookie = cookieValue(first, 'session-id')!
    t.same((await app.inject({ method: 'POST', url: '/visit', cookies: { 'session-id': cookie } })).json(), { visits: 2, isNew: false })

    await spare.stop()
    const started = Date.now()
    const during = await Promise.all(Array.from({ length: 200 }, (_, i) => app.inject({
      method: 'POST', url: '/visit', cookies: i % 2 === 0 ? { 'session-id': cookie } : {}
    })))
    t.ok(Date.now() - started < 5000, 'every request answered within the bound, none queued')
    t.same(new Set(during.map((r) => r.statusCode)), new Set([503]))
    t.same(new Set(during.map((r) => r.json().code)), new Set(['FST_SESSION_ARCHIVE_UNAVAILABLE']))
    t.same(during.flatMap(setCookies), [], 'no cookie: users are not silently logged out')
    t.equal((await app.inject({ url: '/health' })).statusCode, 200)

    await spare.start()
    let after: Awaited<ReturnType<typeof app.inject>> | undefined
    t.ok(await eventually(async () => {
      after = await app.inject({ method: 'POST', url: '/visit', cookies: { 'session-id': cookie } })
      return after.statusCode === 200
    }, 10_000), 'recovers without a restart')
    t.same(after?.json(), { visits: 1, isNew: true }, 'Redis came back empty: a fresh session')
    t.not(cookieValue(after!, 'session-id'), cookie, 'under a new id')
  })
}
