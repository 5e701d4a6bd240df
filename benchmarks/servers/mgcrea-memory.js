// @mgcrea/fastify-session with its MemoryStore and its default HMAC-signed id cookie.
import { randomBytes } from 'node:crypto'
import Fastify from 'fastify'
import fastifyCookie from '@fastify/cookie'
import fastifySession, { MemoryStore } from '@mgcrea/fastify-session'
import { serve } from '../bench-server.js'

const app = Fastify()
await app.register(fastifyCookie)
await app.register(fastifySession, {
  secret: randomBytes(32).toString('base64url'),
  store: new MemoryStore(),
  saveUninitialized: false,
  cookie: { path: '/', httpOnly: true, sameSite: 'lax', secure: false, maxAge: 86_400 }
})
await serve(app, (request) => request.session)
