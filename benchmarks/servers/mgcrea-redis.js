// @mgcrea/fastify-session with its Redis store on ioredis, under a key prefix whose keys run.js deletes.
import { randomBytes } from 'node:crypto'
import Fastify from 'fastify'
import fastifyCookie from '@fastify/cookie'
import fastifySession from '@mgcrea/fastify-session'
import { RedisStore } from '@mgcrea/fastify-session-redis-store'
import { Redis } from 'ioredis'
import { requiredEnv, serve } from '../bench-server.js'

const client = new Redis(requiredEnv('BENCH_REDIS_URL'))
const app = Fastify()
app.addHook('onClose', () => client.quit())
await app.register(fastifyCookie)
await app.register(fastifySession, {
  secret: randomBytes(32).toString('base64url'),
  store: new RedisStore({ client, prefix: requiredEnv('BENCH_REDIS_PREFIX'), ttl: 86_400 }),
  saveUninitialized: false,
  cookie: { path: '/', httpOnly: true, sameSite: 'lax', secure: false, maxAge: 86_400 }
})
await serve(app, (request) => request.session)
