// fastify-sessions in archive mode with RedisArchive, under a key prefix whose keys run.js deletes.
import { randomBytes } from 'node:crypto'
import Fastify from 'fastify'
import fastifySessions, { RedisArchive } from 'fastify-sessions'
import { archivePopulator, requiredEnv, serve } from '../bench-server.js'

const secret = randomBytes(32).toString('base64url')
const archive = new RedisArchive({ url: requiredEnv('BENCH_REDIS_URL'), prefix: requiredEnv('BENCH_REDIS_PREFIX'), maxSessions: 200_000, maxNewSessions: 200_000 })
const app = Fastify()
await app.register(fastifySessions, { secret, mode: 'archive', archive, cookie: { secure: false } })
await serve(app, (request) => request.session, { populate: archivePopulator(app, archive, secret) })
