// fastify-sessions in archive mode with MemoryArchive: the cookie carries a signed id, the state a Map in this process.
import { randomBytes } from 'node:crypto'
import Fastify from 'fastify'
import fastifySessions, { MemoryArchive } from 'fastify-sessions'
import { archivePopulator, serve } from '../bench-server.js'

const secret = randomBytes(32).toString('base64url')
// Room for the scaling run's 100,000 stored sessions, all new until read, so nothing is evicted while it reads them.
const archive = new MemoryArchive({ maxSessions: 200_000, maxNewSessions: 200_000, maxBytes: 1024 * 1024 * 1024 })
const app = Fastify()
await app.register(fastifySessions, { secret, mode: 'archive', archive, cookie: { secure: false } })
await serve(app, (request) => request.session, { populate: archivePopulator(app, archive, secret) })
