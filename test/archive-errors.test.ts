import t from 'tap'
import { MemoryArchive, type Archive } from '../lib/index.js'
import { buildApp, cookieValue, LogCapture } from './helpers/app.js'
import { RecordingArchive } from './helpers/archives.js'

/** A MemoryArchive without compareAndSet whose reads, once `fail()` is called, throw what `fault` gives for a domain (nothing: the read goes through). */
function faultyGets (fault: (domain: string) => unknown): { archive: Archive, fail: () => void } {
  const inner = new MemoryArchive()
  let failing = false
  const archive: Archive = {
    get: async (domain, key) => {
      const error = failing ? fault(domain) : undefined
      if (error !== undefined) throw error
      return await inner.get(domain, key)
    },
    set: inner.set.bind(inner),
    has: inner.has.bind(inner),
    remove: inner.remove.bind(inner),
    hasDomain: inner.hasDomain.bind(inner),
    removeDomain: inner.removeDomain.bind(inner)
  }
  return { archive, fail: () => { failing = true } }
}

const SECRETISH = 'id=AbCdEfGh12345678 data={"user":"ada"}'

for (const mode of ['archive', 'cookie'] as const) {
  for (const method of ['get', 'set', 'removeDomain'] as const) {
    t.test(`${mode === 'archive' ? 'archive mode' : 'revocable cookie mode'}: an archive error in ${method} answers 503 in words, quoting nothing of the store's own message`, async (t) => {
      const logs = new LogCapture()
      const archive = new RecordingArchive(new MemoryArchive())
      const app = await buildApp(t, { mode, revocable: mode === 'cookie', archive }, logs.server)
      const name = mode === 'archive' ? 'session-id' : 'session'
      app.post('/visit', async (request) => {
        request.session.set('visits', ((request.session.get('visits') as number | undefined) ?? 0) + 1)
        return 'ok'
      })
      app.post('/logout', async (request) => { await request.session.destroy(); return 'ok' })
      const cookie = cookieValue(await app.inject({ method: 'POST', url: '/visit' }), name)!
      // A code that is not a string says nothing; one that is, is kept.
      archive.fail(method, Object.assign(new Error(SECRETISH), method === 'get' ? { code: 42 } : method === 'set' ? { code: 'ECONNRESET' } : {}))
      const failed = await app.inject({ method: 'POST', url: method === 'removeDomain' ? '/logout' : '/visit', cookies: { [name]: cookie } })
      t.equal(failed.statusCode, 503)
      t.equal(failed.json().code, 'FST_SESSION_ARCHIVE_UNAVAILABLE')
      t.match(failed.json().message, method === 'set' ? /the archive failed \(ECONNRESET\)/ : /the archive failed \(Error\)/)
      t.notMatch(failed.body, /AbCdEf|ada/, 'the store message is not in the reply')
      t.notOk(logs.lines.some((line) => JSON.stringify(line).includes('AbCdEf')), 'nor in any log line')
      t.same(failed.cookies, [], 'and no cookie')
    })
  }
}

t.test('a user index the archive cannot change consistently fails with FST_SESSION_ARCHIVE_UNAVAILABLE after bounded retries', async (t) => {
  const inner = new MemoryArchive()
  const archive = Object.assign(Object.create(inner) as MemoryArchive, {
    get: inner.get.bind(inner),
    set: inner.set.bind(inner),
    has: inner.has.bind(inner),
    remove: inner.remove.bind(inner),
    hasDomain: inner.hasDomain.bind(inner),
    removeDomain: inner.removeDomain.bind(inner),
    compareAndSet: async (domain: string, key: string, expected: string | undefined, value: string, ttl?: number) => {
      if (domain.startsWith('user-')) return false
      if (await inner.get(domain, key) !== expected) return false
      await inner.set(domain, key, value, ttl)
      return true
    }
  })
  const app = await buildApp(t, { mode: 'archive', archive })
  app.post('/login', async (request) => { request.session.bindUser('ada'); return 'ok' })
  const login = await app.inject({ method: 'POST', url: '/login' })
  t.equal(login.statusCode, 503)
  t.equal(login.json().code, 'FST_SESSION_ARCHIVE_UNAVAILABLE')
})

t.test('a corrupt user index reads as no sessions', async (t) => {
  const { UserSessions } = await import('../lib/user-sessions.js')
  const archive = new MemoryArchive()
  const users = new UserSessions(() => archive, ['a-test-secret-that-is-32-chars!!'], async () => Date.now(), async () => {})
  const handle = users.newHandle('ada')
  await users.add(handle, { m: 'a', i: 'x'.repeat(32), c: Date.now(), e: Date.now() + 60_000 }, Date.now())
  t.equal((await users.list('ada', Date.now())).length, 1)
  for (const corrupt of ['not json', '[1,2]', 'null']) {
    await archive.set(`user-${handle.slice(0, 22)}`, 'sessions', corrupt)
    t.same(await users.list('ada', Date.now()), [], corrupt)
  }
})

t.test('a listed session whose stored text is not a live session any more is left out of its user\'s list', async (t) => {
  const archive = new MemoryArchive()
  const app = await buildApp(t, { mode: 'archive', archive })
  app.post('/login', async (request) => { request.session.bindUser('ada'); return { id: request.session.id } })
  const first = await app.inject({ method: 'POST', url: '/login' })
  const second = await app.inject({ method: 'POST', url: '/login' })
  t.equal((await app.sessions.list('ada')).length, 2)
  await archive.set(first.json().id, 'session', 'not a session')
  t.equal((await app.sessions.list('ada')).length, 1)
  await archive.set(second.json().id, 'session', JSON.stringify({ c: 1, t: 1, d: {} }))
  t.same(await app.sessions.list('ada'), [], 'nor one past its timeouts')
})

t.test('archive mode: load() of a session another request destroyed meanwhile gives a fresh session', async (t) => {
  const archive = new MemoryArchive()
  const app = await buildApp(t, { mode: 'archive', archive })
  app.post('/visit', async (request) => { request.session.set('visits', 1); return 'ok' })
  app.post('/reload', async (request) => {
    await archive.removeDomain(request.session.id!)
    await request.session.load()
    return { isNew: request.session.isNew, visits: request.session.get('visits') ?? null }
  })
  const cookie = cookieValue(await app.inject({ method: 'POST', url: '/visit' }), 'session-id')!
  t.same((await app.inject({ method: 'POST', url: '/reload', cookies: { 'session-id': cookie } })).json(), { isNew: true, visits: null })
})

t.test('errors of a custom archive on the user index or a listed session are reduced to words too', async (t) => {
  const { archive, fail } = faultyGets((domain) => new Error(`ETIMEDOUT GET ${domain}/session`))
  const app = await buildApp(t, { mode: 'archive', archive })
  app.post('/login', async (request) => { request.session.bindUser('ada'); return 'ok' })
  app.get('/devices', async () => await app.sessions.list('ada'))
  await app.inject({ method: 'POST', url: '/login' })
  fail()
  const devices = await app.inject('/devices')
  t.equal(devices.statusCode, 503)
  t.equal(devices.json().code, 'FST_SESSION_ARCHIVE_UNAVAILABLE')
  t.notMatch(devices.body, /ETIMEDOUT|user-/, 'nothing of the store message or the domain names')
})

t.test('revocable cookie mode: a record that cannot be read behind list() answers 503 in words, even for an error that is not an Error', async (t) => {
  // Not even an Error: all there is to say of it is its type.
  const { archive, fail } = faultyGets((domain) => domain.startsWith('user-') ? undefined : `ETIMEDOUT GET ${domain}`)
  const app = await buildApp(t, { mode: 'cookie', revocable: true, archive })
  app.post('/login', async (request) => { request.session.bindUser('ada'); return 'ok' })
  app.get('/devices', async () => await app.sessions.list('ada'))
  await app.inject({ method: 'POST', url: '/login' })
  fail()
  const devices = await app.inject('/devices')
  t.equal(devices.statusCode, 503)
  t.match(devices.json().message, /the archive failed \(string\)/)
  t.notMatch(devices.body, /ETIMEDOUT/)
})

t.test('revocable cookie mode: load() reads the cookie again and checks its record', async (t) => {
  const archive = new MemoryArchive()
  const app = await buildApp(t, { mode: 'cookie', revocable: true, archive })
  app.post('/login', async (request) => { request.session.set('user', 'ada'); return 'ok' })
  app.post('/reload', async (request) => {
    request.session.set('user', 'changed')
    await request.session.load()
    return { user: request.session.get('user') ?? null }
  })
  const cookie = cookieValue(await app.inject({ method: 'POST', url: '/login' }))!
  t.same((await app.inject({ method: 'POST', url: '/reload', cookies: { session: cookie } })).json(), { user: 'ada' })
})
