// fastify-sessions in cookie mode with cookieSize.overflow 'chunk': a session that
// outgrows its 4096-byte cookie is split over session.0, session.1, ...
import { randomBytes } from 'node:crypto'
import Fastify from 'fastify'
import fastifySessions from 'fastify-sessions'
import { serve } from '../bench-server.js'

const app = Fastify()
await app.register(fastifySessions, {
  secret: randomBytes(32).toString('base64url'),
  cookieSize: { overflow: 'chunk', maxTotal: 12288 },
  cookie: { secure: false }
})
await serve(app, (request) => request.session)
