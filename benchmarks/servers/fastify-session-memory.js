// @fastify/session with its default store, a Map of the live session objects in this process.
import { randomBytes } from 'node:crypto'
import Fastify from 'fastify'
import fastifyCookie from '@fastify/cookie'
import fastifySession from '@fastify/session'
import { serve } from '../bench-server.js'

const app = Fastify()
await app.register(fastifyCookie)
await app.register(fastifySession, {
  secret: randomBytes(32).toString('base64url'),
  // Its defaults are `rolling: true` (a save and a cookie on every request) and
  // `saveUninitialized: true` (anonymous visitors stored): both off, as in fastify-sessions.
  rolling: false,
  saveUninitialized: false,
  // maxAge in milliseconds here.
  cookie: { path: '/', httpOnly: true, sameSite: 'lax', secure: false, maxAge: 86_400_000 }
})
await serve(app, (request) => request.session)
