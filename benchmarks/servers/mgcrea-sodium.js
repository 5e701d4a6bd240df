// @mgcrea/fastify-session with libsodium's secretbox: the whole session sealed in the cookie, no store.
import { randomBytes } from 'node:crypto'
import Fastify from 'fastify'
import fastifyCookie from '@fastify/cookie'
import fastifySession from '@mgcrea/fastify-session'
import { SODIUM_SECRETBOX } from '@mgcrea/fastify-session-sodium-crypto'
import { serve } from '../bench-server.js'

const app = Fastify()
await app.register(fastifyCookie)
await app.register(fastifySession, {
  key: randomBytes(32),
  crypto: SODIUM_SECRETBOX,
  saveUninitialized: false,
  // maxAge in seconds here.
  cookie: { path: '/', httpOnly: true, sameSite: 'lax', secure: false, maxAge: 86_400 }
})
await serve(app, (request) => request.session)
