import { Redis, type RedisOptions } from 'ioredis'
import t, { type Test } from 'tap'
import { RedisArchive } from '../lib/index.js'
import { hasRedisServer, SpareRedis, useRedis } from './helpers/redis.js'

/** A client of the test's own, closed when it ends; connection errors are the test's to watch, not stderr's. */
function clientOf (t: Test, url: string, options: RedisOptions = {}): Redis {
  const client = new Redis(url, { enableOfflineQueue: false, ...options })
  client.on('error', () => {})
  t.teardown(() => client.disconnect())
  return client
}

async function readyError (archive: RedisArchive): Promise<(Error & { code?: string }) | undefined> {
  return archive.ready().then(() => undefined, (error: Error) => error)
}

const redis = await useRedis(t)
if (redis !== undefined && !hasRedisServer()) {
  if (process.env['CI'] === 'true') t.fail('the Redis readiness tests need redis-server on the PATH under CI')
  else t.plan(0, 'no redis-server on the PATH to start and pause for the readiness tests')
} else if (redis !== undefined) {
  t.test('a client still connecting: ready() waits until it is ready, then the archive works', async (t) => {
    const client = clientOf(t, 'redis://127.0.0.1:6379')
    t.not(client.status, 'ready', 'the client has only begun to connect')
    const archive = new RedisArchive({ client, prefix: redis.prefix })
    await archive.ready()
    t.equal(client.status, 'ready')
    await archive.set('StillConnecting_0123456789', 'session', 'x', 60_000)
    t.equal(await archive.get('StillConnecting_0123456789', 'session'), 'x')
  })

  t.test('a client that never becomes ready: ready() fails after readyTimeoutMs, hinting at the client', async (t) => {
    const spare = await SpareRedis.create(t)
    await spare.start()
    spare.pause()
    t.teardown(() => spare.resume())
    const error = await readyError(new RedisArchive({ client: clientOf(t, spare.url), readyTimeoutMs: 300 }))
    t.equal(error?.code, 'FST_SESSION_ARCHIVE_UNAVAILABLE')
    t.match(error?.message, /the client was not ready within 300 ms; start it, or check the options of the client you passed in .*, or raise readyTimeoutMs$/)
    t.notMatch(error?.message, /lazyConnect/, 'no option the types refuse with a client')
  })

  t.test('a client that keeps failing to connect: the timeout names its last error', async (t) => {
    const spare = await SpareRedis.create(t)
    const error = await readyError(new RedisArchive({ client: clientOf(t, spare.url, { retryStrategy: () => 20 }), readyTimeoutMs: 300 }))
    t.match(error, { code: 'FST_SESSION_ARCHIVE_UNAVAILABLE', cause: { name: 'Error', code: 'ECONNREFUSED' } })
    t.match(error?.message, /the client was not ready within 300 ms \(Redis cannot be reached \(ECONNREFUSED\)\); start it, or check the options of the client/)
  })

  t.test('a client that gives up connecting fails ready() when it ends, not at the timeout', async (t) => {
    const spare = await SpareRedis.create(t)
    const error = await readyError(new RedisArchive({ client: clientOf(t, spare.url, { retryStrategy: () => null }), readyTimeoutMs: 60_000 }))
    t.match(error, { code: 'FST_SESSION_ARCHIVE_UNAVAILABLE', cause: { code: 'ECONNREFUSED' } })
    t.match(error?.message, /^fastify-sessions: the session archive is unavailable: Redis cannot be reached \(ECONNREFUSED\); start it, or check the options of the client/)
  })

  t.test('a client disconnected while ready() waits: the connection is closed', async (t) => {
    const spare = await SpareRedis.create(t)
    await spare.start()
    spare.pause()
    t.teardown(() => spare.resume())
    const client = clientOf(t, spare.url)
    const waiting = readyError(new RedisArchive({ client, readyTimeoutMs: 60_000 }))
    client.disconnect()
    const error = await waiting
    t.equal(error?.code, 'FST_SESSION_ARCHIVE_UNAVAILABLE')
    t.match(error?.message, /the connection to Redis is closed; start it, or check the options of the client/)
  })

  t.test('a client already closed fails ready() at once', async (t) => {
    const client = clientOf(t, 'redis://127.0.0.1:6379')
    await new Promise((resolve) => client.once('ready', resolve))
    const ended = new Promise((resolve) => client.once('end', resolve))
    await client.quit()
    await ended
    const error = await readyError(new RedisArchive({ client, readyTimeoutMs: 60_000 }))
    t.equal(error?.code, 'FST_SESSION_ARCHIVE_UNAVAILABLE')
    t.match(error?.message, /the connection to Redis is closed/)
  })

  t.test('the archive\'s own client that cannot get ready within readyTimeoutMs fails with the URL hint and is ended', async (t) => {
    const spare = await SpareRedis.create(t)
    await spare.start()
    spare.pause()
    t.teardown(() => spare.resume())
    const archive = new RedisArchive({ url: spare.url, commandTimeoutMs: 5000, readyTimeoutMs: 300 })
    const error = await readyError(archive)
    t.equal(error?.code, 'FST_SESSION_ARCHIVE_UNAVAILABLE')
    t.match(error?.message, /the client was not ready within 300 ms; start it, check the URL, or pass lazyConnect: true to start without it, or raise readyTimeoutMs$/)
    await t.rejects(archive.get('Ended_0123456789', 'session'), { code: 'FST_SESSION_ARCHIVE_UNAVAILABLE' }, 'its client was ended')
    await archive.close()
  })

  t.test('readyTimeoutMs must be a whole number of milliseconds greater than 0', async (t) => {
    for (const readyTimeoutMs of [0, -1, 1.5, Number.NaN, Infinity, '100' as unknown as number]) {
      t.throws(() => new RedisArchive({ client: redis.client, readyTimeoutMs }), { code: 'FST_SESSION_INVALID_OPTION' }, String(readyTimeoutMs))
    }
    t.doesNotThrow(() => new RedisArchive({ client: redis.client, readyTimeoutMs: 1 }))
  })
}
