import { RedisStore } from 'connect-redis'
import connectPgSimple from 'connect-pg-simple'
import session from 'express-session'
import createMemoryStore from 'memorystore'
import { createClient } from 'redis'
import createFileStore from 'session-file-store'
import type { Test } from 'tap'
import t from 'tap'
import { ExpressStoreArchive, type ExpressStore } from '../../lib/index.js'
import { archiveConformance } from '../../lib/testing.js'
import { addSessionRoutes, buildApp, cookieValue } from '../helpers/app.js'
import { RecordingArchive } from '../helpers/archives.js'
import { usePostgres } from '../helpers/postgres.js'
import { REDIS_URL, useRedis } from '../helpers/redis.js'
import { tempDir } from '../helpers/temp-dir.js'

/** A real express-session store, closed (with its client) when the test ends; undefined when its server is absent and the test skipped. */
type MakeStore = (t: Test) => Promise<ExpressStore | undefined>

const stores: Record<string, MakeStore> = {
  'connect-redis on the redis client': async (t) => {
    const redis = await useRedis(t)
    if (redis === undefined) return undefined
    const client = createClient({ url: REDIS_URL })
    await client.connect()
    t.teardown(() => client.close())
    return new RedisStore({ client, prefix: redis.prefix })
  },

  'connect-pg-simple on PostgreSQL': async (t) => {
    const postgres = await usePostgres(t)
    if (postgres === undefined) return undefined
    const PGStore = connectPgSimple(session)
    const store = new PGStore({ pool: postgres.pool, schemaName: postgres.schema, createTableIfMissing: true, pruneSessionInterval: false })
    t.teardown(() => store.close())
    return store
  },

  memorystore: async (t) => {
    const MemoryStore = createMemoryStore(session)
    const store = new MemoryStore({ checkPeriod: 60_000 })
    t.teardown(() => store.stopInterval())
    return store
  },

  'session-file-store in a directory': async (t) => {
    const FileStore = createFileStore(session)
    // No retries of a missing file (each retry is logged with the file's path) and no reaping timer.
    return new FileStore({ path: await tempDir(t), retries: 0, reapInterval: -1 })
  }
}

for (const [name, makeStore] of Object.entries(stores)) {
  t.test(name, async (t) => {
    const store = await makeStore(t)
    if (store === undefined) return

    t.test('passes the archive conformance suite', async (t) => {
      for (const { name, run } of archiveConformance(() => new ExpressStoreArchive(store))) t.test(name, (t) => t.resolves(run()))
    })

    t.test('carries a plugin session: set, read back, destroy', async (t) => {
      const archive = new RecordingArchive(new ExpressStoreArchive(store))
      const app = await buildApp(t, { mode: 'archive', archive })
      addSessionRoutes(app)
      app.get('/destroy', async (request) => {
        await request.session.destroy()
        return { ok: true }
      })

      const written = await app.inject({ url: '/write?user=grace' })
      t.equal(written.statusCode, 200)
      const cookies = { 'session-id': cookieValue(written, 'session-id') as string }
      const [id] = archive.domainsOf('set')
      t.ok(id, 'the session was stored')

      const stored = await new Promise<Record<string, unknown> | null | undefined>((resolve, reject) => {
        store.get(id as string, (error, value) => { if (error === null || error === undefined) resolve(value); else reject(error) })
      })
      t.match(stored, { fastifySessions: { session: { value: String, expiresAt: Number } } }, 'in the store, as one session object')

      const read = await app.inject({ url: '/read', cookies })
      t.same(read.json(), { isNew: false, user: 'grace' })

      const destroyed = await app.inject({ url: '/destroy', cookies })
      t.equal(destroyed.statusCode, 200)
      t.equal(await archive.hasDomain(id as string), false, 'gone from the store')
      const after = await app.inject({ url: '/read', cookies })
      t.same(after.json(), { isNew: true, user: null })
    })
  })
}
