import t from 'tap'
import { FileArchive, type Archive } from '../lib/index.js'
import { buildApp, cookieValue, setCookies } from './helpers/app.js'
import { tempDir } from './helpers/temp-dir.js'

t.test('revocable cookie mode: a record another instance rewrites between its read and its write is not overwritten, and no cookie is sent', async (t) => {
  const dir = await tempDir(t)
  const here = new FileArchive({ dir, sweepIntervalMs: 0 })
  const elsewhere = new FileArchive({ dir, sweepIntervalMs: 0 })
  t.teardown(() => elsewhere.close())
  // Counts down the record reads; at zero, the other instance rewrites the record just read.
  let readsLeft = Infinity
  let rewritten: string | undefined
  const archive: Archive = {
    get: async (domain, key) => {
      const value = await here.get(domain, key)
      if (key === 'record' && --readsLeft === 0) {
        await elsewhere.set(domain, key, 'written elsewhere', 60_000)
        rewritten = domain
      }
      return value
    },
    set: (domain, key, value, ttlMs) => here.set(domain, key, value, ttlMs),
    has: (domain, key) => here.has(domain, key),
    remove: (domain, key) => here.remove(domain, key),
    hasDomain: (domain) => here.hasDomain(domain),
    removeDomain: (domain) => here.removeDomain(domain),
    compareAndSet: (domain, key, expected, value, ttlMs) => here.compareAndSet(domain, key, expected, value, ttlMs),
    close: () => here.close()
  }
  const app = await buildApp(t, { mode: 'cookie', revocable: true, archive })
  app.post('/visit', async (request) => {
    request.session.set('visits', ((request.session.get('visits') as number | undefined) ?? 0) + 1)
    return 'ok'
  })
  const first = await app.inject({ method: 'POST', url: '/visit' })
  t.equal(setCookies(first).length, 1, 'a new session is sealed, its record written')
  // The request's own check reads the record first; the read before the write is the second.
  readsLeft = 2
  const second = await app.inject({ method: 'POST', url: '/visit', cookies: { session: cookieValue(first) as string } })
  t.equal(second.statusCode, 200)
  t.not(rewritten, undefined, 'the record was rewritten between the read and the write')
  t.same(setCookies(second), [], 'the save that lost sends no cookie')
  t.equal(await elsewhere.get(rewritten as string, 'record'), 'written elsewhere', 'and the other instance\'s record stands')
})
