// fastify-sessions in archive mode with FileArchive, in a directory that run.js creates and removes.
import { randomBytes } from 'node:crypto'
import Fastify from 'fastify'
import fastifySessions, { FileArchive } from 'fastify-sessions'
import { archivePopulator, requiredEnv, serve } from '../bench-server.js'

const secret = randomBytes(32).toString('base64url')
// No periodic sweep: it runs once a minute, so it would land inside some measured windows and not others.
// Room for the scaling run's 100,000 stored sessions, all new until read, as for the memory servers.
const archive = new FileArchive({ dir: requiredEnv('BENCH_FILE_DIR'), sweepIntervalMs: 0, maxSessions: 200_000, maxNewSessions: 200_000 })
const app = Fastify()
await app.register(fastifySessions, { secret, mode: 'archive', archive, cookie: { secure: false } })
await serve(app, (request) => request.session, { populate: archivePopulator(app, archive, secret, { concurrency: 64 }) })
