import Fastify from 'fastify'
import { Redis as Redis5 } from 'ioredis'
import { Redis as Redis6 } from 'ioredis6'
import { Valkey } from 'iovalkey'
import t from 'tap'
import { fastifySessions, RedisArchive, type RedisClient } from '../../lib/index.js'
import { archiveConformance } from '../../lib/testing.js'
import { cookieValue, SECRET } from '../helpers/app.js'
import { REDIS_URL, useRedis } from '../helpers/redis.js'

/** Every client the archive supports, each created as its docs advise: no offline queue, and still connecting. */
const CLIENTS: Array<{ name: string, connect: () => RedisClient & { disconnect: () => void } }> = [
  { name: 'ioredis 5', connect: () => new Redis5(REDIS_URL, { enableOfflineQueue: false, commandTimeout: 2000 }) },
  { name: 'ioredis 6', connect: () => new Redis6(REDIS_URL, { enableOfflineQueue: false, commandTimeout: 2000 }) },
  { name: 'iovalkey', connect: () => new Valkey(REDIS_URL, { enableOfflineQueue: false, commandTimeout: 2000 }) }
]

const redis = await useRedis(t)
if (redis !== undefined) {
  const { prefix } = redis

  for (const { name, connect } of CLIENTS) {
    t.test(`${name}: the conformance suite passes on a client passed in`, async (t) => {
      const client = connect()
      t.teardown(() => client.disconnect())
      const make = async (): Promise<RedisArchive> => {
        const archive = new RedisArchive({ client, prefix })
        await archive.ready()
        return archive
      }
      for (const { name, run } of archiveConformance(make)) await t.test(name, run)
      t.equal(client.status, 'ready', 'closing the archives left the client open')
    })

    t.test(`${name}: a fresh client without offline queue starts an app, which keeps a session`, async (t) => {
      const client = connect()
      t.teardown(() => client.disconnect())
      const app = Fastify()
      t.teardown(() => app.close())
      app.register(fastifySessions, { secret: SECRET, mode: 'archive', archive: new RedisArchive({ client, prefix }) })
      app.post('/visit', async (request) => {
        const visits = (request.session.get('visits') as number | undefined ?? 0) + 1
        request.session.set('visits', visits)
        return { visits }
      })
      await app.ready()
      const first = await app.inject({ method: 'POST', url: '/visit' })
      t.same(first.json(), { visits: 1 })
      const again = await app.inject({ method: 'POST', url: '/visit', cookies: { 'session-id': cookieValue(first, 'session-id')! } })
      t.same(again.json(), { visits: 2 })
    })
  }
}
