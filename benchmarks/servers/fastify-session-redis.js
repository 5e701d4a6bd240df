// @fastify/session with connect-redis on node-redis, under a key prefix whose keys run.js deletes.
import { randomBytes } from 'node:crypto'
import Fastify from 'fastify'
import fastifyCookie from '@fastify/cookie'
import fastifySession from '@fastify/session'
import { RedisStore } from 'connect-redis'
import { createClient } from 'redis'
import { requiredEnv, serve } from '../bench-server.js'

const client = createClient({ url: requiredEnv('BENCH_REDIS_URL') })
await client.connect()
const app = Fastify()
app.addHook('onClose', () => client.quit())
await app.register(fastifyCookie)
await app.register(fastifySession, {
  secret: randomBytes(32).toString('base64url'),
  store: new RedisStore({ client, prefix: requiredEnv('BENCH_REDIS_PREFIX'), ttl: 86_400 }),
  rolling: false,
  saveUninitialized: false,
  cookie: { path: '/', httpOnly: true, sameSite: 'lax', secure: false, maxAge: 86_400_000 }
})
await serve(app, (request) => request.session)
