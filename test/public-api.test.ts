import t from 'tap'
import * as api from '../lib/index.js'
import * as testing from '../lib/testing.js'

t.test('the package exports exactly its public surface', async (t) => {
  t.same(Object.keys(api).sort(), [
    'ExpressStoreArchive',
    'FST_SESSION_ARCHIVE_AT_CAPACITY', 'FST_SESSION_ARCHIVE_DENIED', 'FST_SESSION_ARCHIVE_FULL', 'FST_SESSION_ARCHIVE_INVALID_NAME', 'FST_SESSION_ARCHIVE_IO',
    'FST_SESSION_ARCHIVE_UNAVAILABLE', 'FST_SESSION_COOKIE_TOO_LARGE', 'FST_SESSION_HEADERS_SENT', 'FST_SESSION_INVALID_ARGUMENT',
    'FST_SESSION_INVALID_OPTION', 'FST_SESSION_NOT_ENABLED', 'FST_SESSION_NOT_REVOCABLE', 'FST_SESSION_PROPERTY_WRITE',
    'FST_SESSION_SECRET_TOO_SHORT', 'FST_SESSION_TOO_LARGE', 'FST_SESSION_UNSERIALIZABLE',
    'FileArchive', 'MAX_DEPTH', 'MemoryArchive', 'RedisArchive', 'Session',
    'default', 'defineSessionType', 'fastifySessions'
  ])
  t.equal(api.default, api.fastifySessions, 'the plugin is both the default and a named export')
  t.same(Object.keys(testing), ['archiveConformance'], 'fastify-sessions/testing holds the conformance suite')
})

t.test('every error is a constructor with its FST_SESSION_* code', async (t) => {
  for (const [name, value] of Object.entries(api)) {
    if (!name.startsWith('FST_SESSION_')) continue
    const Make = value as new (...args: unknown[]) => Error & { code: string, statusCode: number }
    const error = new Make('x', 1, 2)
    t.equal(error.code, name)
    t.ok(error instanceof Make)
    t.ok(error.statusCode === 500 || error.statusCode === 503, `${name} has status ${error.statusCode}`)
  }
})
