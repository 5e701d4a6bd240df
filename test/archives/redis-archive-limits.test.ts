import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import t from 'tap'
import { RedisArchive, type RedisArchiveOptions, type RedisClient } from '../../lib/archives/redis.js'
import { REDIS_URL, useRedis } from '../helpers/redis.js'

const ids = (from: number, count: number): string[] => Array.from({ length: count }, (_, i) => `Domain_${String(from + i).padStart(6, '0')}`)

const redis = await useRedis(t)
if (redis !== undefined) {
  const { client } = redis
  let cases = 0
  /** An archive on a prefix of this case's own, so that its counts start at zero. */
  const archiveFor = (options: Partial<RedisArchiveOptions> = {}): RedisArchive => {
    return new RedisArchive({ client, prefix: `${redis.prefix}${cases++}:`, ...options } as RedisArchiveOptions)
  }
  const create = async (archive: RedisArchive, domains: string[], ttlMs = 60_000): Promise<void> => {
    for (const domain of domains) await archive.set(domain, 'session', `data of ${domain}`, ttlMs)
  }
  const comeBack = (archive: RedisArchive, domains: string[]): Promise<Array<string | undefined>> => {
    return Promise.all(domains.map((domain) => archive.get(domain, 'session')))
  }
  const present = (archive: RedisArchive, domains: string[]): Promise<boolean[]> => {
    return Promise.all(domains.map((domain) => archive.hasDomain(domain)))
  }

  t.test('beyond maxNewSessions the oldest new session goes; established ones stay', async (t) => {
    const archive = archiveFor({ maxSessions: 10, maxNewSessions: 3 })
    const established = ids(0, 2)
    await create(archive, established)
    await comeBack(archive, established)
    const fresh = ids(100, 5)
    await create(archive, fresh)
    t.same(await present(archive, fresh), [false, false, true, true, true])
    t.same(await present(archive, established), [true, true])
  })

  t.test('a session is new until a get finds it; has, hasDomain and a get of a missing key do not establish it', async (t) => {
    const archive = archiveFor({ maxSessions: 10, maxNewSessions: 2 })
    const [probed, found, other] = ids(0, 3) as [string, string, string]
    await create(archive, [probed, found])
    await archive.has(probed, 'session')
    await archive.hasDomain(probed)
    await archive.get(probed, 'missing')
    t.equal(await archive.get(found, 'session'), `data of ${found}`)
    t.equal(await archive.get(found, 'session'), `data of ${found}`, 'a second read finds it established')
    await create(archive, [other, 'Domain_more'])
    t.same(await present(archive, [probed, found, other]), [false, true, true])
  })

  t.test('beyond maxSessions the oldest new session goes, even under the new quota', async (t) => {
    const archive = archiveFor({ maxSessions: 5, maxNewSessions: 3 })
    const established = ids(0, 3)
    await create(archive, established)
    await comeBack(archive, established)
    await create(archive, ids(100, 3))
    t.same(await present(archive, ids(100, 3)), [false, true, true])
    t.same(await present(archive, established), [true, true, true])
  })

  t.test('when established sessions fill maxSessions, creating one rejects with FST_SESSION_ARCHIVE_AT_CAPACITY; writes to existing ones succeed', async (t) => {
    const archive = archiveFor({ maxSessions: 3, maxNewSessions: 1 })
    const established = ids(0, 3)
    for (const domain of established) {
      await create(archive, [domain])
      await comeBack(archive, [domain])
    }
    await t.rejects(archive.set('Domain_new', 'session', 'x', 60_000), { code: 'FST_SESSION_ARCHIVE_AT_CAPACITY', statusCode: 503 })
    await t.rejects(archive.compareAndSet('Domain_new', 'session', undefined, 'x', 60_000), { code: 'FST_SESSION_ARCHIVE_AT_CAPACITY' })
    t.equal(await archive.hasDomain('Domain_new'), false, 'nothing of it was stored')
    await archive.set(established[0] as string, 'session', 'changed', 60_000)
    t.equal(await archive.compareAndSet(established[1] as string, 'session', `data of ${established[1]}`, 'swapped', 60_000), true)
    await archive.set(established[2] as string, 'second key', 'added')
    t.same(await comeBack(archive, established), ['changed', 'swapped', `data of ${established[2]}`])
    await archive.removeDomain(established[2] as string)
    await archive.set('Domain_new', 'session', 'x', 60_000)
    t.equal(await archive.get('Domain_new', 'session'), 'x', 'a freed place takes a new session again')
  })

  t.test('removing the last key ends the session and frees its place', async (t) => {
    const archive = archiveFor({ maxSessions: 2, maxNewSessions: 2 })
    const [a, b] = ids(0, 2) as [string, string]
    await create(archive, [a, b])
    await comeBack(archive, [a, b])
    await archive.set(a, 'other', 'x', 60_000)
    await archive.remove(a, 'session')
    t.equal(await archive.hasDomain(a), true)
    await archive.remove(a, 'other')
    await archive.remove(a, 'other')
    t.equal(await archive.hasDomain(a), false)
    await create(archive, ['Domain_c'])
    t.same(await present(archive, [b, 'Domain_c']), [true, true])
    await archive.remove('Domain_c', 'session')
    await create(archive, ['Domain_d'])
    t.same(await present(archive, [b, 'Domain_d']), [true, true], 'a new session whose only key went frees its place too')
  })

  t.test('expired sessions leave the counts: they never keep a live one out', async (t) => {
    const archive = archiveFor({ maxSessions: 3, maxNewSessions: 3 })
    const brief = ids(0, 3)
    await create(archive, brief, 50)
    await comeBack(archive, brief)
    await t.rejects(archive.set('Domain_late', 'session', 'x', 60_000), { code: 'FST_SESSION_ARCHIVE_AT_CAPACITY' })
    await sleep(80)
    await archive.set('Domain_late', 'session', 'x', 60_000)
    t.equal(await archive.get('Domain_late', 'session'), 'x')
  })

  t.test('a session whose keys all expired is created anew when written: new again, under the quota', async (t) => {
    const archive = archiveFor({ maxSessions: 10, maxNewSessions: 1 })
    await create(archive, ['Domain_a'], 50)
    await comeBack(archive, ['Domain_a'])
    await sleep(80)
    await create(archive, ['Domain_a'])
    await create(archive, ['Domain_b'])
    t.same(await present(archive, ['Domain_a', 'Domain_b']), [false, true], 'it was new, so the next creation removed it')
  })

  t.test('the limits hold across instances: two archives on one prefix share the counts', async (t) => {
    const other = new Redis(REDIS_URL)
    t.teardown(() => other.quit())
    const prefix = `${redis.prefix}shared:`
    const a = new RedisArchive({ client, prefix, maxSessions: 4, maxNewSessions: 2 })
    const b = new RedisArchive({ client: other, prefix, maxSessions: 4, maxNewSessions: 2 })
    await create(a, ['Domain_a1'])
    await create(b, ['Domain_b1'])
    t.equal(await b.get('Domain_a1', 'session'), 'data of Domain_a1', 'b establishes what a created')
    await create(a, ['Domain_a2'])
    await create(b, ['Domain_b2'])
    await create(a, ['Domain_a3'])
    t.same(await present(b, ['Domain_a1', 'Domain_b1', 'Domain_a2', 'Domain_b2', 'Domain_a3']), [true, false, false, true, true])
    t.equal(await client.zcard(`${prefix}sessions`), 3)
    t.equal(await client.zcard(`${prefix}new-sessions`), 2)
  })

  t.test('by default 100_000 sessions, a tenth of them new', async (t) => {
    const archive = archiveFor()
    const prefix = `${redis.prefix}${cases - 1}:`
    await Promise.all(ids(0, 10_001).map((domain) => archive.set(domain, 'session', 'x', 60_000)))
    t.equal(await client.zcard(`${prefix}new-sessions`), 10_000)
    t.equal(await client.zcard(`${prefix}sessions`), 10_000)
  })

  t.test('a read of an established session is one command; only the first read of a new one adds a script', async (t) => {
    const calls: string[] = []
    const counting = new Proxy(client, {
      get (target, name, receiver) {
        const value = Reflect.get(target, name, receiver)
        if (typeof value !== 'function') return value
        return (...args: unknown[]) => {
          calls.push(String(name))
          return value.apply(target, args)
        }
      }
    }) as RedisClient
    const archive = new RedisArchive({ client: counting, prefix: `${redis.prefix}${cases++}:` })
    await archive.set('Domain_counted', 'session', 'x', 60_000)
    calls.length = 0
    await archive.get('Domain_counted', 'session')
    t.same(calls, ['hmget', 'evalsha'], 'the first read establishes it')
    calls.length = 0
    await archive.get('Domain_counted', 'session')
    await archive.get('Domain_missing', 'session')
    t.same(calls, ['hmget', 'hmget'])
  })

  t.test('maxSessions and maxNewSessions must be positive integers, maxNewSessions at most maxSessions', async (t) => {
    for (const option of ['maxSessions', 'maxNewSessions']) {
      for (const value of [0, -1, 1.5, Number.NaN, Infinity, '10']) {
        t.throws(() => new RedisArchive({ client, [option]: value }), { code: 'FST_SESSION_INVALID_OPTION', message: new RegExp(option) }, `${option}: ${String(value)}`)
      }
    }
    t.throws(() => new RedisArchive({ client, maxSessions: 10, maxNewSessions: 11 }), { code: 'FST_SESSION_INVALID_OPTION', message: /maxNewSessions/ })
    t.doesNotThrow(() => new RedisArchive({ client, maxSessions: 1, maxNewSessions: 1 }))
    t.doesNotThrow(() => new RedisArchive({ client, maxSessions: 5 }), 'the new quota is at least one')
  })
}
