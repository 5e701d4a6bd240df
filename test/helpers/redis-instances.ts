import Fastify, { type FastifyInstance } from 'fastify'
import type { Test } from 'tap'
import { fastifySessions, RedisArchive, type RedisArchiveOptions, type RedisClient } from '../../lib/index.js'
import { SESSION_KEY } from '../../lib/archive-mode.js'
import { cookieValue, SECRET, setCookies } from './app.js'
import { deferred } from './archives.js'

/** Where the instances of `instanceTests` keep their sessions. */
export interface SharedRedis {
  /** A client on it, ready, for the test's own reads. */
  client: RedisClient
  prefix: string
  /** Options of an archive with a connection of its own, as another instance has. */
  connection: () => RedisArchiveOptions
}

/** Fastify instances, each with a RedisArchive of its own, sharing one Redis (or one Redis Cluster). */
export function instanceTests (t: Test, redis: SharedRedis): void {
  const { prefix } = redis

  /** One Fastify instance with its own RedisArchive (its own connection) on the shared Redis. */
  async function instance (t: Test, name: string, routes: (app: FastifyInstance) => void = () => {}, archive = new RedisArchive(redis.connection())) {
    const app = Fastify()
    t.teardown(() => app.close())
    await app.register(fastifySessions, { secret: SECRET, mode: 'archive', archive })
    app.post('/login', async (request) => {
      await request.session.regenerate()
      request.session.set('user', name)
      return 'ok'
    })
    app.get('/', async (request) => ({ user: request.session.get('user') ?? null, served: name }))
    app.post('/logout', async (request) => { await request.session.destroy(); return 'ok' })
    routes(app)
    return app
  }

  function storedData (id: string): Promise<unknown> {
    return new RedisArchive({ client: redis.client, prefix }).get(id, SESSION_KEY).then((text) => JSON.parse(text as string).d)
  }

  t.test('log in on A, read on B, log out on B, gone on A', async (t) => {
    const a = await instance(t, 'A')
    const b = await instance(t, 'B')
    const cookie = cookieValue(await a.inject({ method: 'POST', url: '/login' }), 'session-id')!
    t.same((await b.inject({ url: '/', cookies: { 'session-id': cookie } })).json(), { user: 'A', served: 'B' })
    const logout = await b.inject({ method: 'POST', url: '/logout', cookies: { 'session-id': cookie } })
    t.match(setCookies(logout), [/^session-id=; Max-Age=0/])
    t.same((await a.inject({ url: '/', cookies: { 'session-id': cookie } })).json(), { user: null, served: 'A' })
  })

  t.test('two instances changing different keys of one session both keep their change', async (t) => {
    const bothRead = deferred()
    let reads = 0
    const routes = (app: FastifyInstance): void => {
      app.post('/set/:key', async (request) => {
        const { key } = request.params as { key: string }
        if (++reads === 2) bothRead.resolve()
        await bothRead.promise
        request.session.set(key, true)
        return 'ok'
      })
    }
    const a = await instance(t, 'A', routes)
    const b = await instance(t, 'B', routes)
    const cookie = cookieValue(await a.inject({ method: 'POST', url: '/login' }), 'session-id')!
    await Promise.all([
      a.inject({ method: 'POST', url: '/set/fromA', cookies: { 'session-id': cookie } }),
      b.inject({ method: 'POST', url: '/set/fromB', cookies: { 'session-id': cookie } })
    ])
    t.same(await storedData(cookie.split('.')[0] as string), { user: 'A', fromA: true, fromB: true })
  })

  t.test('a session destroyed on one instance is not brought back by a slower save on another', async (t) => {
    const gate = deferred()
    const entered = deferred()
    const a = await instance(t, 'A')
    const b = await instance(t, 'B', (app) => {
      app.post('/slow', async (request) => {
        entered.resolve()
        await gate.promise
        request.session.set('late', true)
        return 'ok'
      })
    })
    const cookie = cookieValue(await a.inject({ method: 'POST', url: '/login' }), 'session-id')!
    const slow = b.inject({ method: 'POST', url: '/slow', cookies: { 'session-id': cookie } })
    await entered.promise
    await a.inject({ method: 'POST', url: '/logout', cookies: { 'session-id': cookie } })
    gate.resolve()
    t.same(setCookies(await slow), [], 'the slow save sends no cookie: the browser keeps what the logout set')
    t.equal(await new RedisArchive({ client: redis.client, prefix }).hasDomain(cookie.split('.')[0] as string), false)
  })

  t.test('a save that loses a race with another instance reads and merges again', async (t) => {
    const other = new RedisArchive(redis.connection())
    await other.ready()
    t.teardown(() => other.close())
    let raced = false
    /** Another instance writes between this save's read and its compare-and-set, once. */
    class RacingArchive extends RedisArchive {
      override async compareAndSet (domain: string, key: string, expected: string | undefined, value: string, ttlMs?: number): Promise<boolean> {
        if (!raced && expected !== undefined) {
          raced = true
          const stored = JSON.parse(expected)
          stored.d.elsewhere = true
          await other.set(domain, key, JSON.stringify(stored), ttlMs)
        }
        return super.compareAndSet(domain, key, expected, value, ttlMs)
      }
    }
    const a = await instance(t, 'A', (app) => {
      app.post('/here', async (request) => { request.session.set('here', true); return 'ok' })
    }, new RacingArchive(redis.connection()))
    const cookie = cookieValue(await a.inject({ method: 'POST', url: '/login' }), 'session-id')!
    const response = await a.inject({ method: 'POST', url: '/here', cookies: { 'session-id': cookie } })
    t.equal(response.statusCode, 200)
    t.ok(raced)
    t.same(await storedData(cookie.split('.')[0] as string), { user: 'A', elsewhere: true, here: true })
  })

  t.test('a save of a session that nothing else changed is one round trip: one script, no read before it', async (t) => {
    const calls: string[] = []
    // The archive's client, seen through a proxy that notes each command it is sent.
    const counted = new Proxy(redis.client, {
      get (target, property, receiver) {
        const value = Reflect.get(target, property, receiver)
        if (typeof value !== 'function' || typeof property !== 'string') return value
        return (...args: unknown[]) => {
          calls.push(property)
          return value.apply(target, args)
        }
      }
    })
    const a = await instance(t, 'A', (app) => {
      app.post('/visit', async (request) => {
        request.session.set('visits', (request.session.get('visits') as number | undefined ?? 0) + 1)
        return 'ok'
      })
    }, new RedisArchive({ client: counted, prefix }))
    const cookie = cookieValue(await a.inject({ method: 'POST', url: '/login' }), 'session-id')!
    // The first read of a new session takes it off probation, with a script of its own.
    await a.inject({ url: '/', cookies: { 'session-id': cookie } })
    for (const visits of [1, 2]) {
      calls.length = 0
      const response = await a.inject({ method: 'POST', url: '/visit', cookies: { 'session-id': cookie } })
      t.match(setCookies(response), [/^session-id=/])
      t.same(calls, ['hmget', 'evalsha'], 'the read in onRequest, then the compare-and-set')
      t.same(await storedData(cookie.split('.')[0] as string), { user: 'A', visits })
    }
  })

  t.test('a session changed under every save attempt gives up with a 503', async (t) => {
    /** Another instance always wins the race. */
    class AlwaysLosingArchive extends RedisArchive {
      override async compareAndSet (domain: string, key: string, expected: string | undefined, value: string, ttlMs?: number): Promise<boolean> {
        return expected === undefined ? super.compareAndSet(domain, key, expected, value, ttlMs) : false
      }
    }
    const a = await instance(t, 'A', (app) => {
      app.post('/here', async (request) => { request.session.set('here', true); return 'ok' })
    }, new AlwaysLosingArchive(redis.connection()))
    const cookie = cookieValue(await a.inject({ method: 'POST', url: '/login' }), 'session-id')!
    const response = await a.inject({ method: 'POST', url: '/here', cookies: { 'session-id': cookie } })
    t.equal(response.statusCode, 503)
    t.equal(response.json().code, 'FST_SESSION_ARCHIVE_UNAVAILABLE')
    t.same(setCookies(response), [])
  })
}
