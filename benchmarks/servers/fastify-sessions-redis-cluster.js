// fastify-sessions in archive mode with RedisArchive on a Redis Cluster (three masters
// started by the harness with redis-cluster.js), through an ioredis Cluster client,
// under a key prefix of its own.
import { randomBytes } from 'node:crypto'
import Fastify from 'fastify'
import fastifySessions, { RedisArchive } from 'fastify-sessions'
import { Cluster } from 'ioredis'
import { archivePopulator, requiredEnv, serve } from '../bench-server.js'

const secret = randomBytes(32).toString('base64url')
const nodes = requiredEnv('BENCH_REDIS_CLUSTER_NODES').split(',').map((node) => {
  const [host, port] = node.split(':')
  return { host, port: Number(port) }
})
const client = new Cluster(nodes, { enableOfflineQueue: false, redisOptions: { commandTimeout: 1000 } })
const archive = new RedisArchive({ client, prefix: requiredEnv('BENCH_REDIS_PREFIX'), maxSessions: 200_000, maxNewSessions: 200_000 })
const app = Fastify()
app.addHook('onClose', () => client.quit())
await app.register(fastifySessions, { secret, mode: 'archive', archive, cookie: { secure: false } })
await serve(app, (request) => request.session, { populate: archivePopulator(app, archive, secret) })
