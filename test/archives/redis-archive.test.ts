import t from 'tap'
import { RedisArchive } from '../../lib/archives/redis.js'
import { archiveConformance } from '../../lib/testing.js'
import { REDIS_URL, useRedis } from '../helpers/redis.js'

const redis = await useRedis(t)
if (redis !== undefined) {
  const { client, prefix } = redis

  t.test('the conformance suite, on a client passed in', async (t) => {
    for (const { name, run } of archiveConformance(() => new RedisArchive({ client, prefix }))) await t.test(name, run)
  })

  t.test('the conformance suite, on a client the archive creates from a URL', async (t) => {
    const make = async (): Promise<RedisArchive> => {
      const archive = new RedisArchive({ url: REDIS_URL, prefix })
      await archive.ready()
      return archive
    }
    for (const { name, run } of archiveConformance(make)) await t.test(name, run)
  })

  t.test('a domain is one hash under <prefix>{<id>} whose field carries its expiry, and expires with it', async (t) => {
    const archive = new RedisArchive({ client, prefix })
    await archive.set('SomeSessionId_0123456789', 'session', '{"c":1}', 60_000)
    const key = `${prefix}{SomeSessionId_0123456789}`
    t.equal(await client.type(key), 'hash')
    const stored = await client.hget(key, 'session')
    t.match(stored, /^\d{13}:\{"c":1\}$/)
    const ttl = await client.pttl(key)
    t.ok(ttl > 55_000 && ttl <= 60_000, `the hash expires with its field (pttl ${ttl})`)
  })

  t.test('a hash expires with its latest field, persists with one that has no ttl, and a write drops its expired fields', async (t) => {
    const archive = new RedisArchive({ client, prefix })
    const domain = 'LatestField_0123456789'
    const key = `${prefix}{${domain}}`
    const pttl = async (): Promise<number> => client.pttl(key)
    await archive.set(domain, 'long', 'a', 60_000)
    t.equal(await client.hget(key, ':new'), '1', 'a created session is marked new')
    await archive.set(domain, 'short', 'b', 5_000)
    t.ok(await pttl() > 55_000, 'a shorter field does not shorten the hash')
    await archive.set(domain, 'longer', 'c', 120_000)
    t.ok(await pttl() > 115_000, 'a longer field lengthens it')
    await archive.set(domain, 'longer', 'c', 30_000)
    const shortened = await pttl()
    t.ok(shortened > 55_000 && shortened <= 60_000, `the field written again counts with its new ttl (pttl ${shortened})`)
    await archive.set(domain, 'kept', 'd')
    t.equal(await pttl(), -1, 'a field without ttl keeps the hash')
    await archive.remove(domain, 'kept')
    await archive.set(domain, 'brief', 'e', 1)
    await new Promise((resolve) => setTimeout(resolve, 20))
    await archive.set(domain, 'long', 'a', 60_000)
    t.equal(await client.hexists(key, 'brief'), 0, 'an expired field is dropped by the next write')
    t.ok(await pttl() > 55_000, 'and the hash expires with its latest live field')
    t.equal(await client.hget(key, ':new'), '1', 'a write to an existing session leaves its mark alone')
    t.equal(await archive.get(domain, 'short'), 'b')
    t.equal(await client.hget(key, ':new'), null, 'a get that finds it establishes it')
    await archive.set(domain, 'short', 'f', 5_000)
    t.equal(await client.hget(key, ':new'), null, 'and a later write does not mark it new again')
  })

  t.test('compareAndSet writes only over the expected value', async (t) => {
    const archive = new RedisArchive({ client, prefix })
    const domain = 'CompareAndSet_0123456789'
    t.equal(await archive.compareAndSet(domain, 'session', undefined, 'one', 60_000), true, 'creates when nothing is there')
    t.equal(await archive.compareAndSet(domain, 'session', undefined, 'two', 60_000), false, 'does not create over a value')
    t.equal(await archive.compareAndSet(domain, 'session', 'nope', 'two', 60_000), false, 'does not replace another value')
    t.equal(await archive.get(domain, 'session'), 'one')
    t.equal(await archive.compareAndSet(domain, 'session', 'one', 'two', 60_000), true)
    t.equal(await archive.get(domain, 'session'), 'two')
    await archive.set(domain, 'session', 'brief', 1)
    await new Promise((resolve) => setTimeout(resolve, 20))
    t.equal(await archive.compareAndSet(domain, 'session', 'brief', 'late', 60_000), false, 'an expired value is no value')
    t.equal(await archive.compareAndSet(domain, 'session', undefined, 'fresh', 60_000), true)
  })

  t.test('scripts are loaded again when Redis has forgotten them', async (t) => {
    const archive = new RedisArchive({ client, prefix })
    await client.script('FLUSH')
    await archive.set('ScriptFlush_0123456789', 'session', 'kept', 60_000)
    t.equal(await archive.get('ScriptFlush_0123456789', 'session'), 'kept')
  })

  t.test('an archive closes the client it created and never one passed in', async (t) => {
    const passedIn = new RedisArchive({ client, prefix })
    await passedIn.close()
    t.equal(await client.ping(), 'PONG', 'the client passed in is still open')

    const owning = new RedisArchive({ url: REDIS_URL, prefix })
    await owning.ready()
    await owning.set('Owned_0123456789', 'session', 'x', 60_000)
    await owning.close()
    await t.rejects(owning.get('Owned_0123456789', 'session'), 'its own client is closed')
    await owning.close()
  })

  t.test('bad options are FST_SESSION_INVALID_OPTION errors', async (t) => {
    t.throws(() => new RedisArchive({ url: '' }), { code: 'FST_SESSION_INVALID_OPTION' })
    t.throws(() => new RedisArchive({} as { url: string }), { code: 'FST_SESSION_INVALID_OPTION' })
    t.throws(() => new RedisArchive({ url: REDIS_URL, commandTimeoutMs: 0 }), { code: 'FST_SESSION_INVALID_OPTION' })
    t.throws(() => new RedisArchive({ client, prefix: 42 as unknown as string }), { code: 'FST_SESSION_INVALID_OPTION' })
  })
}
