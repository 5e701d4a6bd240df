import { inspect } from 'node:util'
import Fastify from 'fastify'
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { fastifySessions, RedisArchive } from '../lib/index.js'
import { SESSION_KEY } from '../lib/archive-mode.js'
import { cookieValue, LogCapture, SECRET } from './helpers/app.js'
import { hasRedisServer, SpareRedis, useRedis } from './helpers/redis.js'

const ID = 'PrivateSessionId_0123456789abcdef'
const CARD = '4111-1111-1111-1111'
const DATA = JSON.stringify({ d: { card: CARD } })

/** Every way an error can be shown (its JSON, its inspection with stack and cause) holds none of `secrets`. */
function assertPrivate (t: Test, error: unknown, secrets: string[] = [ID, CARD]): void {
  const shown = [JSON.stringify(error), JSON.stringify((error as Error).cause), inspect(error, { depth: 10 }), String((error as Error).stack)].join('\n')
  for (const secret of secrets) t.notOk(shown.includes(secret), `nothing shows ${secret}`)
}

/** The archive's call rejects with FST_SESSION_ARCHIVE_UNAVAILABLE saying `problem`, with only { name, code } as its cause. */
async function rejectsPrivately (t: Test, call: Promise<unknown>, problem: RegExp, cause: Record<string, string>): Promise<void> {
  const error = await call.then(() => undefined, (error: unknown) => error as Error & { code: string })
  t.ok(error, 'it rejects')
  t.equal(error?.code, 'FST_SESSION_ARCHIVE_UNAVAILABLE')
  t.match(error?.message, problem)
  t.same(error?.cause, cause, 'the cause keeps only the name and code of the client error')
  assertPrivate(t, error)
}

const redis = await useRedis(t)
if (redis !== undefined && !hasRedisServer()) {
  if (process.env['CI'] === 'true') t.fail('the Redis error tests need redis-server on the PATH under CI')
  else t.plan(0, 'no redis-server on the PATH to start, pause and stop for the error tests')
} else if (redis !== undefined) {
  t.test('a command that times out: "Redis did not answer in time"', async (t) => {
    const spare = await SpareRedis.create(t)
    await spare.start()
    const archive = new RedisArchive({ url: spare.url, commandTimeoutMs: 200 })
    t.teardown(() => archive.close())
    await archive.ready()
    await archive.set(ID, SESSION_KEY, DATA, 60_000)
    spare.pause()
    t.teardown(() => spare.resume())
    await rejectsPrivately(t, archive.get(ID, SESSION_KEY), /Redis did not answer in time$/, { name: 'Error' })
    await rejectsPrivately(t, archive.set(ID, SESSION_KEY, DATA, 60_000), /Redis did not answer in time$/, { name: 'Error' })
    await rejectsPrivately(t, archive.compareAndSet(ID, SESSION_KEY, DATA, DATA, 60_000), /Redis did not answer in time$/, { name: 'Error' })
  })

  t.test('a killed redis-server: the connection is closed, and neither the 503 nor the log names the session', async (t) => {
    const spare = await SpareRedis.create(t)
    await spare.start()
    const logs = new LogCapture()
    const app = Fastify({ logger: { level: 'debug', stream: logs.stream } })
    t.teardown(() => app.close())
    const archive = new RedisArchive({ url: spare.url, commandTimeoutMs: 300 })
    await app.register(fastifySessions, { secret: SECRET, mode: 'archive', archive })
    app.post('/card', async (request) => { request.session.set('card', CARD); return 'ok' })
    const cookie = cookieValue(await app.inject({ method: 'POST', url: '/card' }), 'session-id')!
    const id = cookie.split('.')[0] as string

    await spare.stop()
    const response = await app.inject({ method: 'POST', url: '/card', cookies: { 'session-id': cookie } })
    t.equal(response.statusCode, 503)
    t.equal(response.json().code, 'FST_SESSION_ARCHIVE_UNAVAILABLE')
    t.match(response.json().message, /the connection to Redis is closed|not connected to Redis|cannot be reached/)
    for (const shown of [response.body, JSON.stringify(logs.lines)]) {
      t.notOk(shown.includes(id), 'no session id')
      t.notOk(shown.includes(CARD), 'no session data')
    }

    const problem = /the connection to Redis is closed|not connected to Redis, and queues no commands|cannot be reached \(ECONNREFUSED\)/
    for (const call of [archive.get(id, SESSION_KEY), archive.set(id, SESSION_KEY, DATA), archive.hasDomain(id), archive.remove(id, SESSION_KEY), archive.removeDomain(id)]) {
      const error = await call.then(() => undefined, (error: unknown) => error as Error & { code: string })
      t.equal(error?.code, 'FST_SESSION_ARCHIVE_UNAVAILABLE')
      t.match(error?.message, problem)
      assertPrivate(t, error, [id, CARD])
    }
  })

  t.test('a Redis out of memory: "Redis refused the command (OOM)"', async (t) => {
    const spare = await SpareRedis.create(t, ['--maxmemory', '1', '--maxmemory-policy', 'noeviction'])
    await spare.start()
    const archive = new RedisArchive({ url: spare.url })
    t.teardown(() => archive.close())
    await archive.ready()
    await rejectsPrivately(t, archive.set(ID, SESSION_KEY, DATA, 60_000), /Redis refused the command \(OOM\)$/, { name: 'ReplyError', code: 'OOM' })
    await rejectsPrivately(t, archive.compareAndSet(ID, SESSION_KEY, undefined, DATA, 60_000), /Redis refused the command \(OOM\)$/, { name: 'ReplyError', code: 'OOM' })
  })

  t.test('an ACL user without permission: "Redis refused the command (NOPERM)"', async (t) => {
    const spare = await SpareRedis.create(t)
    await spare.start()
    const admin = new Redis(spare.url)
    t.teardown(() => admin.quit())
    await admin.set(`fastify-sessions:{${ID}}`, DATA)
    // May read and connect, on keys of another prefix only: every archive command is refused.
    await admin.call('ACL', 'SETUSER', 'reader', 'on', '>reader-password', '~elsewhere:*', '+@connection', '+info', '+hget', '+hvals')
    const archive = new RedisArchive({ url: `redis://reader:reader-password@127.0.0.1:${spare.port}` })
    t.teardown(() => archive.close())
    await archive.ready()
    const noperm = { name: 'ReplyError', code: 'NOPERM' }
    await rejectsPrivately(t, archive.get(ID, SESSION_KEY), /Redis refused the command \(NOPERM\)$/, noperm)
    await rejectsPrivately(t, archive.set(ID, SESSION_KEY, DATA, 60_000), /Redis refused the command \(NOPERM\)$/, noperm)
    await rejectsPrivately(t, archive.removeDomain(ID), /Redis refused the command \(NOPERM\)$/, noperm)

    await admin.call('ACL', 'SETUSER', 'mute', 'on', '>mute-password', '~*', '+hello', '+auth', '+info')
    const mute = new RedisArchive({ url: `redis://mute:mute-password@127.0.0.1:${spare.port}` })
    t.teardown(() => mute.close())
    const refused = await mute.ready().then(() => undefined, (error: Error) => error)
    t.match(refused, { code: 'FST_SESSION_ARCHIVE_UNAVAILABLE', cause: noperm }, 'a user who may not even ping fails registration')
    t.match(refused?.message, /Redis refused the command \(NOPERM\); start it, check the URL/)
  })

  t.test('a key of the wrong type: "Redis refused the command (WRONGTYPE)"', async (t) => {
    const { client, prefix } = redis
    await client.set(`${prefix}{${ID}}`, DATA)
    const archive = new RedisArchive({ client, prefix })
    await rejectsPrivately(t, archive.get(ID, SESSION_KEY), /Redis refused the command \(WRONGTYPE\)$/, { name: 'ReplyError', code: 'WRONGTYPE' })
    await rejectsPrivately(t, archive.hasDomain(ID), /Redis refused the command \(WRONGTYPE\)$/, { name: 'ReplyError', code: 'WRONGTYPE' })
  })

  t.test('anything else a client throws: "the Redis client failed", with no text of it', async (t) => {
    const failing = {
      hmget: async () => { throw Object.assign(new Error(`boom ${ID}`), { name: `Odd ${CARD}`, code: 42, args: [ID, DATA] }) },
      hgetall: async () => { throw 'a bare string' }, // eslint-disable-line no-throw-literal
      evalsha: async () => { throw Object.assign(new Error(`the key ${ID} is odd`), { name: 'ReplyError' }) }
    }
    const archive = new RedisArchive({ client: failing as unknown as Redis })
    await rejectsPrivately(t, archive.get(ID, SESSION_KEY), /the Redis client failed$/, { name: 'Error' })
    await rejectsPrivately(t, archive.hasDomain(ID), /the Redis client failed$/, { name: 'Error' })
    await rejectsPrivately(t, archive.removeDomain(ID), /Redis refused the command \(an error reply\)$/, { name: 'ReplyError' })
  })

  t.test('a client passed in that cannot reach Redis: the hint names the client, never lazyConnect', async (t) => {
    const spare = await SpareRedis.create(t)
    const client = new Redis(spare.url, { lazyConnect: true, enableOfflineQueue: false, retryStrategy: () => null })
    client.on('error', () => {})
    t.teardown(() => client.disconnect())
    const error = await new RedisArchive({ client }).ready().then(() => undefined, (error: Error) => error)
    t.match(error, { code: 'FST_SESSION_ARCHIVE_UNAVAILABLE' })
    t.match(error?.message, /the client you passed in/)
    t.notMatch(error?.message, /lazyConnect/)
  })

  t.test('a Redis that is not running at registration: "Redis cannot be reached (ECONNREFUSED)", with the URL hint', async (t) => {
    const spare = await SpareRedis.create(t)
    const error = await new RedisArchive({ url: spare.url, commandTimeoutMs: 300 }).ready().then(() => undefined, (error: Error) => error)
    t.match(error, { code: 'FST_SESSION_ARCHIVE_UNAVAILABLE', cause: { name: 'Error', code: 'ECONNREFUSED' } })
    t.match(error?.message, /Redis cannot be reached \(ECONNREFUSED\); start it, check the URL, or pass lazyConnect: true/)
  })

  t.test('a client that gives up retrying: "the client gave up reaching Redis"', async (t) => {
    const spare = await SpareRedis.create(t)
    const client = new Redis(spare.url, { maxRetriesPerRequest: 1, retryStrategy: () => 20 })
    client.on('error', () => {})
    t.teardown(() => client.disconnect())
    const archive = new RedisArchive({ client })
    await rejectsPrivately(t, archive.set(ID, SESSION_KEY, DATA, 60_000), /the client gave up reaching Redis$/, { name: 'MaxRetriesPerRequestError' })
  })
}
