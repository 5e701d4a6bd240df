import t from 'tap'
import type { Archive } from '../lib/archives/archive.js'
import { MemoryArchive } from '../lib/archives/memory.js'
import { SESSION_KEY } from '../lib/archive-mode.js'
import { buildApp, cookieValue, setCookies } from './helpers/app.js'
import { deferred, RecordingArchive } from './helpers/archives.js'

type App = Awaited<ReturnType<typeof buildApp>>

/** An archive-mode app with `routes` and a stored session holding `{ start: true }`. */
async function concurrencyApp<A extends Archive> (t: Parameters<typeof buildApp>[0], archive: A, routes: (app: App) => void) {
  const app = await buildApp(t, { mode: 'archive', archive })
  app.post('/start', async (request) => { request.session.set('start', true); return 'ok' })
  routes(app)
  const cookie = cookieValue(await app.inject({ method: 'POST', url: '/start' }), 'session-id')!
  return { app, archive, cookie, id: cookie.split('.')[0] as string }
}

// Without compareAndSet a save reads and merges; with it, it first compares
// against what the request read and reads and merges only when that changed.
const ARCHIVES: Array<{ label: string, make: () => Archive }> = [
  { label: 'an archive without compareAndSet', make: () => new RecordingArchive(new MemoryArchive()) },
  { label: 'an archive with compareAndSet', make: () => new MemoryArchive() }
]

for (const { label, make } of ARCHIVES) {
  t.test(`${label}: two concurrent requests changing different keys both keep their change`, async (t) => {
    const bothRead = deferred()
    let reads = 0
    const { app, archive, cookie, id } = await concurrencyApp(t, make(), (app) => {
      app.post('/set/:key', async (request) => {
        const { key } = request.params as { key: string }
        if (++reads === 3) bothRead.resolve()
        await bothRead.promise // all requests hold the same old state before any saves
        request.session.set(key, key.toUpperCase())
        return 'ok'
      })
    })
    const responses = await Promise.all(['a', 'b', 'c'].map((key) => app.inject({ method: 'POST', url: `/set/${key}`, cookies: { 'session-id': cookie } })))
    t.same(responses.map((r) => r.statusCode), [200, 200, 200])
    const stored = JSON.parse(await archive.get(id, SESSION_KEY) as string)
    t.same(stored.d, { start: true, a: 'A', b: 'B', c: 'C' }, 'no lost update')
  })

  t.test(`${label}: a delete in one request and a set in another both hold`, async (t) => {
    const gate = deferred()
    const entered = deferred()
    const { app, archive, cookie, id } = await concurrencyApp(t, make(), (app) => {
      app.post('/delete-start', async (request) => {
        entered.resolve()
        await gate.promise
        request.session.delete('start')
        return 'ok'
      })
      app.post('/set-other', async (request) => { request.session.set('other', 1); return 'ok' })
    })
    const deleting = app.inject({ method: 'POST', url: '/delete-start', cookies: { 'session-id': cookie } })
    await entered.promise // it read { start: true } before the other request changed anything
    await app.inject({ method: 'POST', url: '/set-other', cookies: { 'session-id': cookie } })
    gate.resolve()
    await deleting
    t.same(JSON.parse(await archive.get(id, SESSION_KEY) as string).d, { other: 1 })
  })

  t.test(`${label}: a session destroyed by one request is not brought back by a slower one that saves after it`, async (t) => {
    const gate = deferred()
    const entered = deferred()
    const { app, archive, cookie, id } = await concurrencyApp(t, make(), (app) => {
      app.post('/slow', async (request) => {
        entered.resolve()
        await gate.promise
        request.session.set('late', 'write')
        return 'ok'
      })
      app.post('/logout', async (request) => { await request.session.destroy(); return 'ok' })
    })
    const slow = app.inject({ method: 'POST', url: '/slow', cookies: { 'session-id': cookie } })
    await entered.promise // the slow request has read the session
    const logout = await app.inject({ method: 'POST', url: '/logout', cookies: { 'session-id': cookie } })
    t.equal(logout.statusCode, 200)
    gate.resolve()
    const late = await slow
    t.equal(late.statusCode, 200, 'the slow request still gets its answer')
    t.equal(await archive.hasDomain(id), false, 'the destroyed session stays destroyed')
    t.same(setCookies(late), [], 'and the slow request sends no cookie: the browser keeps what the logout set')
  })
}

t.test('a save of a session that no other request changed is one compareAndSet, with no read before it', async (t) => {
  const calls: string[] = []
  class CountingArchive extends MemoryArchive {
    override async get (domain: string, key: string): Promise<string | undefined> {
      calls.push('get')
      return super.get(domain, key)
    }

    override async compareAndSet (domain: string, key: string, expected: string | undefined, value: string, ttlMs?: number): Promise<boolean> {
      calls.push('compareAndSet')
      return super.compareAndSet(domain, key, expected, value, ttlMs)
    }
  }
  const { app, archive, cookie, id } = await concurrencyApp(t, new CountingArchive(), (app) => {
    app.post('/visit', async (request) => {
      request.session.set('visits', (request.session.get('visits') as number | undefined ?? 0) + 1)
      await request.session.save()
      request.session.set('saved', 'twice')
      return 'ok'
    })
  })
  calls.length = 0
  const response = await app.inject({ method: 'POST', url: '/visit', cookies: { 'session-id': cookie } })
  t.equal(response.statusCode, 200)
  t.same(calls, ['get', 'compareAndSet', 'compareAndSet'], 'the read in onRequest, then each save compares against the text before it')
  t.same(JSON.parse(await archive.get(id, SESSION_KEY) as string).d, { start: true, visits: 1, saved: 'twice' })
})

t.test('saves of one session run one at a time, in order', async (t) => {
  const { app, archive, cookie, id } = await concurrencyApp(t, new RecordingArchive(new MemoryArchive()), (app) => {
    app.post('/n/:n', async (request) => {
      request.session.set('last', Number((request.params as { n: string }).n))
      return 'ok'
    })
  })
  const slowWrite = deferred()
  archive.gate('set', slowWrite.promise)
  const first = app.inject({ method: 'POST', url: '/n/1', cookies: { 'session-id': cookie } })
  await new Promise((resolve) => setTimeout(resolve, 20))
  const second = app.inject({ method: 'POST', url: '/n/2', cookies: { 'session-id': cookie } })
  await new Promise((resolve) => setTimeout(resolve, 20))
  t.equal(archive.domainsOf('set').length, 2, 'the first save is under way, the second waits for it')
  archive.ungate()
  slowWrite.resolve()
  await Promise.all([first, second])
  t.equal(JSON.parse(await archive.get(id, SESSION_KEY) as string).d.last, 2)
})
