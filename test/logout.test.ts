import type { FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import { MemoryArchive, type FastifySessionsOptions } from '../lib/index.js'
import { REVOCATION_CHECK_MS } from '../lib/cookie-mode.js'
import { buildApp, cookieValue, setCookies } from './helpers/app.js'
import { deferred } from './helpers/archives.js'
import { advanceClock } from './helpers/clock.js'
import { ARCHIVE_MODE, REVOCABLE_COOKIE_MODE, type Setup } from './helpers/setups.js'

const SERVER_SIDE: readonly Setup[] = [ARCHIVE_MODE, REVOCABLE_COOKIE_MODE]

/** Login, read, a write that waits for a gate, an untouched route that waits, and logout. */
async function logoutApp (t: Test, setup: Setup, extra: Partial<FastifySessionsOptions> = {}) {
  const gate = deferred()
  const entered = deferred()
  const app: FastifyInstance = await buildApp(t, { ...setup.options(), ...extra })
  app.post('/login', async (request) => {
    await request.session.regenerate()
    request.session.set('user', 'ada')
    return 'ok'
  })
  app.post('/visit', async (request) => { request.session.set('visits', 1); return 'ok' })
  app.get('/read', async (request) => ({ user: request.session.get('user') ?? null }))
  app.post('/slow', async (request) => {
    request.session.get('user')
    entered.resolve()
    await gate.promise
    request.session.set('late', true)
    return 'ok'
  })
  app.get('/slow-untouched', async () => {
    entered.resolve()
    await gate.promise
    return 'ok'
  })
  app.post('/logout', async (request) => { await request.session.destroy(); return 'ok' })
  const cookieOf = (response: Awaited<ReturnType<FastifyInstance['inject']>>): string => cookieValue(response, setup.name)!
  const send = (method: 'GET' | 'POST', url: string, cookie?: string) =>
    app.inject({ method, url, cookies: cookie === undefined ? {} : { [setup.name]: cookie } })
  return { app, gate, entered, cookieOf, send }
}

for (const setup of SERVER_SIDE) {
  t.test(`${setup.label}: a copy of the cookie taken before logout opens nothing after it`, async (t) => {
    const { send, cookieOf } = await logoutApp(t, setup)
    const copy = cookieOf(await send('POST', '/login'))
    t.same((await send('GET', '/read', copy)).json(), { user: 'ada' })
    const logout = await send('POST', '/logout', copy)
    t.match(setCookies(logout), [new RegExp(`^${setup.name}=; Max-Age=0;`)])
    t.same((await send('GET', '/read', copy)).json(), { user: null }, 'the replayed copy is a fresh session')
  })

  t.test(`${setup.label}: a request in flight at logout answers with no cookie at all`, async (t) => {
    const { send, cookieOf, gate, entered } = await logoutApp(t, setup)
    const cookie = cookieOf(await send('POST', '/login'))
    const slow = send('POST', '/slow', cookie)
    await entered.promise
    await send('POST', '/logout', cookie)
    gate.resolve()
    const late = await slow
    t.equal(late.statusCode, 200)
    t.same(setCookies(late), [], 'no freshly sealed, logged-in cookie, and no clearing one either')
    t.same((await send('GET', '/read', cookie)).json(), { user: null })
  })

  t.test(`${setup.label}, rolling: an untouched request in flight at logout does not bring the session back`, async (t) => {
    const { send, cookieOf, gate, entered } = await logoutApp(t, setup, { rolling: true })
    const cookie = cookieOf(await send('POST', '/login'))
    const slow = send('GET', '/slow-untouched', cookie)
    await entered.promise
    await send('POST', '/logout', cookie)
    gate.resolve()
    t.same(setCookies(await slow), [])
    t.same((await send('GET', '/read', cookie)).json(), { user: null })
  })

  t.test(`${setup.label}, rolling: a request that began before login and ends after it leaves the login cookie alone`, async (t) => {
    const { send, cookieOf, gate, entered } = await logoutApp(t, setup, { rolling: true })
    const anonymous = cookieOf(await send('POST', '/visit'))
    const slow = send('GET', '/slow-untouched', anonymous)
    await entered.promise
    const login = await send('POST', '/login', anonymous)
    gate.resolve()
    t.same(setCookies(await slow), [], 'neither a clearing cookie nor the anonymous session')
    t.same((await send('GET', '/read', cookieOf(login))).json(), { user: 'ada' })
    t.same((await send('GET', '/read', anonymous)).json(), { user: null }, 'the pre-login session is worth nothing')
  })
}

t.test('archive mode: regenerate() then load() still retires the old id', async (t) => {
  const archive = new MemoryArchive()
  const app = await buildApp(t, { mode: 'archive', archive })
  app.post('/visit', async (request) => { request.session.set('visits', 1); return 'ok' })
  app.post('/regenerate-load', async (request) => {
    await request.session.regenerate()
    await request.session.load()
    request.session.set('user', 'ada')
    return { visits: request.session.get('visits') ?? null }
  })
  const old = cookieValue(await app.inject({ method: 'POST', url: '/visit' }), 'session-id')!
  const response = await app.inject({ method: 'POST', url: '/regenerate-load', cookies: { 'session-id': old } })
  t.same(response.json(), { visits: null }, 'load() after regenerate() reads the new, empty session')
  const fresh = cookieValue(response, 'session-id')!
  t.not(fresh.split('.')[0], old.split('.')[0])
  t.equal(await archive.hasDomain(old.split('.')[0]!), false, 'the old id is gone')
})

t.test('revocable cookie mode: destroy() also ends a session regenerated in the same request', async (t) => {
  const archive = new MemoryArchive()
  const app = await buildApp(t, { mode: 'cookie', revocable: true, archive })
  app.post('/visit', async (request) => { request.session.set('visits', 1); return 'ok' })
  app.post('/regenerate-destroy', async (request) => {
    await request.session.regenerate()
    await request.session.destroy()
    return 'ok'
  })
  app.post('/regenerate-load', async (request) => {
    await request.session.regenerate()
    await request.session.load()
    return { visits: request.session.get('visits') ?? null }
  })
  app.get('/read', async (request) => ({ visits: request.session.get('visits') ?? null }))
  const first = cookieValue(await app.inject({ method: 'POST', url: '/visit' }))!
  const destroyed = await app.inject({ method: 'POST', url: '/regenerate-destroy', cookies: { session: first } })
  t.match(setCookies(destroyed), [/^session=; Max-Age=0;/])
  t.same((await app.inject({ url: '/read', cookies: { session: first } })).json(), { visits: null })
  const second = cookieValue(await app.inject({ method: 'POST', url: '/visit' }))!
  const loaded = await app.inject({ method: 'POST', url: '/regenerate-load', cookies: { session: second } })
  t.same(loaded.json(), { visits: null }, 'load() after regenerate() reads the new, empty session')
  t.equal(setCookies(loaded).length, 1, 'which is sent')
  t.same((await app.inject({ url: '/read', cookies: { session: second } })).json(), { visits: null }, 'and the old token is revoked')
})

t.test('revocable cookie mode: a token sealed without a record, or before revocable was on, is a fresh session', async (t) => {
  const plain = await buildApp(t)
  plain.post('/visit', async (request) => { request.session.set('visits', 1); return 'ok' })
  const token = cookieValue(await plain.inject({ method: 'POST', url: '/visit' }))!
  const revocable = await buildApp(t, { mode: 'cookie', revocable: true, archive: new MemoryArchive() })
  revocable.get('/read', async (request) => ({ visits: request.session.get('visits') ?? null }))
  const read = await revocable.inject({ url: '/read', cookies: { session: token } })
  t.same(read.json(), { visits: null })
  t.match(setCookies(read), [/^session=; Max-Age=0;/], 'and the refused cookie is cleared')
})

t.test('revocable cookie mode: another instance refuses a revoked token within REVOCATION_CHECK_MS', async (t) => {
  const archive = new MemoryArchive()
  const options = { mode: 'cookie' as const, revocable: true, archive }
  const a = await buildApp(t, options)
  const b = await buildApp(t, options)
  for (const app of [a, b]) {
    app.post('/login', async (request) => { request.session.set('user', 'ada'); return 'ok' })
    app.get('/read', async (request) => ({ user: request.session.get('user') ?? null }))
    app.post('/logout', async (request) => { await request.session.destroy(); return 'ok' })
  }
  const token = cookieValue(await a.inject({ method: 'POST', url: '/login' }))!
  t.same((await b.inject({ url: '/read', cookies: { session: token } })).json(), { user: 'ada' }, 'b has seen the record')
  await a.inject({ method: 'POST', url: '/logout', cookies: { session: token } })
  t.same((await a.inject({ url: '/read', cookies: { session: token } })).json(), { user: null }, 'a refuses it at once')
  advanceClock(t, REVOCATION_CHECK_MS)
  t.same((await b.inject({ url: '/read', cookies: { session: token } })).json(), { user: null }, `b refuses it within ${REVOCATION_CHECK_MS} ms`)
})

/** A MemoryArchive whose every call takes `ms`, like a store across a network, and which has no compareAndSet. */
function slowArchive (ms: number): MemoryArchive {
  const inner = new MemoryArchive()
  const slow = <T>(work: () => Promise<T>): Promise<T> => new Promise((resolve, reject) => setTimeout(() => { work().then(resolve, reject) }, ms))
  return {
    get: (d: string, k: string) => slow(() => inner.get(d, k)),
    set: (d: string, k: string, v: string, ttl?: number) => slow(() => inner.set(d, k, v, ttl)),
    has: (d: string, k: string) => slow(() => inner.has(d, k)),
    remove: (d: string, k: string) => slow(() => inner.remove(d, k)),
    hasDomain: (d: string) => slow(() => inner.hasDomain(d)),
    removeDomain: (d: string) => slow(() => inner.removeDomain(d))
  } as unknown as MemoryArchive
}

for (const mode of ['archive', 'cookie'] as const) {
  const setup: Setup = mode === 'archive'
    ? { label: 'archive mode on a slow archive', name: 'session-id', options: () => ({ mode: 'archive', archive: slowArchive(15) }) }
    : { label: 'revocable cookie mode on a slow archive', name: 'session', options: () => ({ mode: 'cookie', revocable: true, archive: slowArchive(15) }) }

  t.test(`${setup.label}, without compareAndSet: a save in flight at logout still loses to it`, async (t) => {
    const { send, cookieOf, gate, entered } = await logoutApp(t, setup)
    const cookie = cookieOf(await send('POST', '/login'))
    const slow = send('POST', '/slow', cookie)
    await entered.promise
    t.equal((await send('POST', '/logout', cookie)).statusCode, 200)
    gate.resolve()
    t.same(setCookies(await slow), [], 'the slow save sends no cookie')
    advanceClock(t, REVOCATION_CHECK_MS)
    t.same((await send('GET', '/read', cookie)).json(), { user: null }, 'and the logged-out cookie stays dead')
  })

  t.test(`${setup.label}, without compareAndSet: a session saved again with nothing in its way stays signed in`, async (t) => {
    const { send, cookieOf } = await logoutApp(t, setup)
    const cookie = cookieOf(await send('POST', '/login'))
    const visited = await send('POST', '/visit', cookie)
    t.equal(visited.statusCode, 200)
    advanceClock(t, REVOCATION_CHECK_MS)
    t.same((await send('GET', '/read', cookieOf(visited))).json(), { user: 'ada' })
  })
}

for (const setup of SERVER_SIDE) {
  t.test(`${setup.label}: a regenerate() in flight when the user is signed out everywhere does not carry the session on`, async (t) => {
    const { app, send, cookieOf, gate, entered } = await logoutApp(t, setup)
    app.post('/sudo', async (request) => {
      entered.resolve()
      await gate.promise
      const user = request.session.get('user') as string | undefined
      await request.session.regenerate(['user'])
      if (user !== undefined) request.session.bindUser(user)
      request.session.set('sudo', true)
      return 'ok'
    })
    app.post('/bind-login', async (request) => {
      await request.session.regenerate()
      request.session.set('user', 'ada')
      request.session.bindUser('ada')
      return 'ok'
    })
    const cookie = cookieOf(await send('POST', '/bind-login'))
    const sudo = send('POST', '/sudo', cookie)
    await entered.promise
    t.equal(await app.sessions.revokeUser('ada'), 1)
    gate.resolve()
    const elevated = await sudo
    t.same(setCookies(elevated), [], 'no new session comes out of the revoked one')
    t.same(await app.sessions.list('ada'), [])
  })
}
