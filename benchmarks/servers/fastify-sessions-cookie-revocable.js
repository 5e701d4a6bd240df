// fastify-sessions in cookie mode with revocable: the session sealed in one cookie, and a small record of it in a MemoryArchive.
import { randomBytes } from 'node:crypto'
import Fastify from 'fastify'
import fastifySessions, { MemoryArchive } from 'fastify-sessions'
import { serve } from '../bench-server.js'

// Room for every session a run creates, none of them evicted as new.
const archive = new MemoryArchive({ maxSessions: 500_000, maxNewSessions: 500_000, maxBytes: 1024 * 1024 * 1024 })
const app = Fastify()
await app.register(fastifySessions, { secret: randomBytes(32).toString('base64url'), mode: 'cookie', revocable: true, archive, cookie: { secure: false } })
await serve(app, (request) => request.session)
