// A project that uses fastify-sessions as a dependency would: through the
// package's `exports`, so against the built `dist/` and its declarations.
import Fastify from 'fastify'
import fastifySessions, {
  ExpressStoreArchive, FST_SESSION_ARCHIVE_UNAVAILABLE, MemoryArchive, RedisArchive,
  type Archive, type ExpressStore, type FastifySessionsOptions
} from 'fastify-sessions'
import { archiveConformance } from 'fastify-sessions/testing'

declare module 'fastify-sessions' {
  interface SessionData {
    user: string
  }
}

declare const store: ExpressStore

const options: FastifySessionsOptions = { secret: 'a-secret-of-at-least-32-characters!', mode: 'archive', archive: new ExpressStoreArchive(store) }
const archives: Archive[] = [new MemoryArchive(), new RedisArchive({ url: 'redis://127.0.0.1:6379' })]

const app = Fastify()
app.register(fastifySessions, options)
app.get('/', async (request) => {
  request.session.set('user', 'ada')
  const user: string | undefined = request.session.get('user')
  return { user }
})

const failure = new FST_SESSION_ARCHIVE_UNAVAILABLE('down')
const code: string = failure.code
const status: number = failure.statusCode
const isOurs: boolean = failure instanceof FST_SESSION_ARCHIVE_UNAVAILABLE

export { app, archives, code, isOurs, status }
export const cases = archiveConformance(() => new MemoryArchive())
