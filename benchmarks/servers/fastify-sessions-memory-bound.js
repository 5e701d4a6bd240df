// fastify-sessions in archive mode with MemoryArchive, each new session bound to a user of its own (bindUser), so a user index is kept.
import { randomBytes } from 'node:crypto'
import Fastify from 'fastify'
import fastifySessions, { MemoryArchive } from 'fastify-sessions'
import { serve } from '../bench-server.js'

const archive = new MemoryArchive({ maxSessions: 500_000, maxNewSessions: 500_000, maxBytes: 1024 * 1024 * 1024 })
const app = Fastify()
await app.register(fastifySessions, { secret: randomBytes(32).toString('base64url'), mode: 'archive', archive, cookie: { secure: false } })
await serve(app, (request) => request.session, { bindUser: true })
