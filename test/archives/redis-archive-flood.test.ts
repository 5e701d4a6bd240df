import { Redis } from 'ioredis'
import t from 'tap'
import { RedisArchive } from '../../lib/archives/redis.js'
import { REDIS_URL, useRedis } from '../helpers/redis.js'

const SESSION = JSON.stringify({ d: { user: 'someone', cart: [1, 2, 3] }, t: 1 })
const MAX_SESSIONS = 300
const MAX_NEW = 50

const redis = await useRedis(t)
if (redis !== undefined) {
  const { client, prefix } = redis

  /** Every key under the test's prefix: the session hashes and the two indexes. */
  async function keysStored (): Promise<number> {
    let cursor = '0'
    let count = 0
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
      cursor = next
      count += keys.length
    } while (cursor !== '0')
    return count
  }

  t.test('a flood of sessions that never come back, from two instances, logs out no established user and stays within the caps', async (t) => {
    const other = new Redis(REDIS_URL)
    t.teardown(() => other.quit())
    const instances = [
      new RedisArchive({ client, prefix, maxSessions: MAX_SESSIONS, maxNewSessions: MAX_NEW }),
      new RedisArchive({ client: other, prefix, maxSessions: MAX_SESSIONS, maxNewSessions: MAX_NEW })
    ] as const
    const users = Array.from({ length: 200 }, (_, i) => `User_${i}`)
    for (const user of users) {
      await instances[0].set(user, 'session', SESSION, 3_600_000)
      await instances[1].get(user, 'session')
    }
    const arrivals: string[] = []
    let highest = 0
    for (let round = 0; round < 60; round++) {
      // 50 anonymous sessions at once, split over both instances, while a user comes back and a new one logs in.
      const arrival = `Arrival_${round}`
      arrivals.push(arrival)
      await Promise.all([
        ...Array.from({ length: 50 }, (_, i) => instances[i % 2]!.set(`Anonymous_${round}_${i}`, 'session', SESSION, 3_600_000)),
        instances[round % 2]!.get(users[round % users.length]!, 'session'),
        instances[round % 2]!.set(arrival, 'session', SESSION, 3_600_000).then(() => instances[(round + 1) % 2]!.get(arrival, 'session'))
      ])
      if (round % 5 === 4) highest = Math.max(highest, await keysStored())
    }
    const missing: string[] = []
    for (const user of [...users, ...arrivals]) if (await instances[0].get(user, 'session') !== SESSION) missing.push(user)
    t.same(missing, [], `all ${users.length + arrivals.length} established users kept through 3000 anonymous sessions`)
    t.ok(highest <= MAX_SESSIONS + 2, `at most ${highest} keys under the prefix: ${MAX_SESSIONS} sessions and the two indexes`)
    t.ok(await client.zcard(`${prefix}new-sessions`) <= MAX_NEW, 'at most maxNewSessions new ones')
    t.equal(await client.zcard(`${prefix}sessions`), await keysStored() - 2, 'the index counts exactly the sessions stored')
  })
}
