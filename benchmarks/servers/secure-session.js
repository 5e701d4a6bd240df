// @fastify/secure-session: libsodium secretbox in one cookie, saved only when set() changed it.
import { randomBytes } from 'node:crypto'
import Fastify from 'fastify'
import fastifySecureSession from '@fastify/secure-session'
import { serve } from '../bench-server.js'

const app = Fastify()
await app.register(fastifySecureSession, {
  key: randomBytes(32),
  expiry: 86400,
  // The attributes fastify-sessions sets by default, over plain HTTP.
  cookie: { path: '/', httpOnly: true, sameSite: 'lax', secure: false, maxAge: 86400 }
})
await serve(app, (request) => request.session)
