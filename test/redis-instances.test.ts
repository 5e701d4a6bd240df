import t from 'tap'
import { REDIS_URL, useRedis } from './helpers/redis.js'
import { instanceTests } from './helpers/redis-instances.js'

const redis = await useRedis(t)
if (redis !== undefined) {
  const { client, prefix } = redis
  instanceTests(t, { client, prefix, connection: () => ({ url: REDIS_URL, prefix }) })
}
