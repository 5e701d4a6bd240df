// fastify-sessions in cookie mode with cookieSize.overflow 'archive': a session that
// outgrows its 4096-byte cookie moves to a MemoryArchive under an id cookie.
import { randomBytes } from 'node:crypto'
import Fastify from 'fastify'
import fastifySessions, { MemoryArchive } from 'fastify-sessions'
import { serve } from '../bench-server.js'

const archive = new MemoryArchive({ maxBytes: 1024 * 1024 * 1024 })
const app = Fastify()
await app.register(fastifySessions, {
  secret: randomBytes(32).toString('base64url'),
  mode: 'cookie',
  archive,
  cookieSize: { overflow: 'archive' },
  cookie: { secure: false }
})
await serve(app, (request) => request.session)
