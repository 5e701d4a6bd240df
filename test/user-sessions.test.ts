import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import t, { type Test } from 'tap'
import { FileArchive, MemoryArchive, type Archive, type FastifySessionsOptions } from '../lib/index.js'
import { buildApp, cookieValue, setCookies } from './helpers/app.js'
import { advanceClock } from './helpers/clock.js'
import { tempDir } from './helpers/temp-dir.js'

interface Setup {
  readonly label: string
  readonly cookieName: string
  options (t: Test): Promise<Partial<FastifySessionsOptions>>
}

const SETUPS: readonly Setup[] = [
  { label: 'archive mode, memory archive', cookieName: 'session-id', options: async () => ({ mode: 'archive', archive: new MemoryArchive() }) },
  { label: 'archive mode, file archive', cookieName: 'session-id', options: async (t) => ({ mode: 'archive', archive: new FileArchive({ dir: await tempDir(t), sweepIntervalMs: 0 }) }) },
  { label: 'revocable cookie mode, memory archive', cookieName: 'session', options: async () => ({ mode: 'cookie', revocable: true, archive: new MemoryArchive() }) },
  { label: 'revocable cookie mode, file archive', cookieName: 'session', options: async (t) => ({ mode: 'cookie', revocable: true, archive: new FileArchive({ dir: await tempDir(t), sweepIntervalMs: 0 }) }) }
]

/** An app with login (regenerate, bind), whoami, devices, sign-out-others and logout routes. */
async function devicesApp (t: Test, setup: Setup, extra: Partial<FastifySessionsOptions> = {}): Promise<{ app: FastifyInstance, login: (user?: string) => Promise<string>, send: (url: string, cookie: string, method?: 'GET' | 'POST') => Promise<LightMyRequestResponse> }> {
  const app = await buildApp(t, { ...await setup.options(t), ...extra })
  app.post('/login', async (request) => {
    const { user = 'ada' } = request.query as { user?: string }
    await request.session.regenerate()
    request.session.set('user', user)
    request.session.bindUser(user)
    return { handle: request.session.handle, userId: request.session.userId }
  })
  app.get('/whoami', async (request) => ({ user: request.session.get('user') ?? null, userId: request.session.userId ?? null, handle: request.session.handle ?? null }))
  app.get('/devices', async (request) => {
    const devices = await app.sessions.list(request.session.userId!)
    return devices.map((device) => ({ ...device, current: device.handle === request.session.handle }))
  })
  app.post('/others', async (request) => ({ ended: await app.sessions.revokeUser(request.session.userId!, { except: request.session.handle }) }))
  app.post('/logout', async (request) => {
    await request.session.destroy()
    return 'ok'
  })
  const login = async (user = 'ada'): Promise<string> => cookieValue(await app.inject({ method: 'POST', url: `/login?user=${user}` }), setup.cookieName)!
  const send = (url: string, cookie: string, method: 'GET' | 'POST' = 'GET'): Promise<LightMyRequestResponse> =>
    app.inject({ method, url, cookies: { [setup.cookieName]: cookie } })
  return { app, login, send }
}

for (const setup of SETUPS) {
  t.test(`${setup.label}: bindUser() ties a session to its user, and list() finds each device, this one marked`, async (t) => {
    const { login, send } = await devicesApp(t, setup)
    const phone = await login()
    const laptop = await login()
    await login('bob')
    const me = (await send('/whoami', laptop)).json()
    t.equal(me.userId, 'ada')
    t.match(me.handle, /^[A-Za-z0-9_-]{44}$/)
    t.not(me.handle, laptop, 'the handle is not the cookie')
    t.notOk(laptop.includes(me.handle), 'nor part of it')
    const devices = (await send('/devices', laptop)).json() as Array<{ handle: string, mode: string, current: boolean, createdAt: string, lastSeenAt: string }>
    t.equal(devices.length, 2, 'two sessions of ada, none of bob')
    t.same(devices.map((device) => device.current).sort(), [false, true])
    t.ok(devices.every((device) => device.mode === (setup.cookieName === 'session' ? 'cookie' : 'archive')))
    t.ok(devices.every((device) => !Number.isNaN(Date.parse(device.createdAt)) && !Number.isNaN(Date.parse(device.lastSeenAt))))
    t.equal((await send('/whoami', phone)).json().user, 'ada')
  })

  t.test(`${setup.label}: revokeUser() with except signs out every other device, at once`, async (t) => {
    const { app, login, send } = await devicesApp(t, setup)
    const phone = await login()
    const tablet = await login()
    const laptop = await login()
    const bob = await login('bob')
    t.same((await send('/others', laptop, 'POST')).json(), { ended: 2 })
    t.same((await send('/whoami', phone)).json(), { user: null, userId: null, handle: null }, 'the phone is signed out')
    t.same((await send('/whoami', tablet)).json().user, null, 'and the tablet')
    t.equal((await send('/whoami', laptop)).json().user, 'ada', 'this device stays')
    t.equal((await send('/whoami', bob)).json().user, 'bob', 'other users are untouched')
    t.equal((await app.sessions.list('ada')).length, 1)
    t.equal(await app.sessions.revokeUser('ada'), 1, 'without except, every session goes')
    t.same((await send('/whoami', laptop)).json().user, null)
    t.same(await app.sessions.list('ada'), [])
    t.equal(await app.sessions.revokeUser('nobody-at-all'), 0)
  })

  t.test(`${setup.label}: revoke(handle) ends that one session; an unknown or malformed handle is false`, async (t) => {
    const { app, login, send } = await devicesApp(t, setup)
    const phone = await login()
    const laptop = await login()
    const phoneHandle = (await send('/whoami', phone)).json().handle as string
    t.equal(await app.sessions.revoke(phoneHandle), true)
    t.equal(await app.sessions.revoke(phoneHandle), false, 'a second time there is nothing to end')
    t.equal(await app.sessions.revoke('not a handle'), false)
    t.equal(await app.sessions.revoke(phoneHandle.slice(0, 22) + 'A'.repeat(22)), false)
    t.equal((await send('/whoami', phone)).json().user, null)
    t.equal((await send('/whoami', laptop)).json().user, 'ada')
  })

  t.test(`${setup.label}: logout and regenerate take the session out of its user's index; expired ones leave it`, async (t) => {
    const { app, login, send } = await devicesApp(t, setup, { maxAge: 60, absoluteTimeout: 600 })
    const first = await login()
    await send('/logout', first, 'POST')
    t.same(await app.sessions.list('ada'), [], 'logout removed it')
    const second = await login()
    const relogin = await app.inject({ method: 'POST', url: '/login?user=ada', cookies: { [setup.cookieName]: second } })
    t.equal(setCookies(relogin).filter((cookie) => cookie.startsWith(`${setup.cookieName}=`)).length, 1)
    t.equal((await app.sessions.list('ada')).length, 1, 'the session that logged in again replaced its old entry')
    t.equal((await send('/whoami', second)).json().user, null, 'and the session before it is gone')
    advanceClock(t, 61_000)
    t.same(await app.sessions.list('ada'), [], 'an idle session is not listed')
    await login()
    advanceClock(t, 600_000)
    await login()
    t.equal((await app.sessions.list('ada')).length, 1, 'entries past the absolute timeout left the index')
  })

  t.test(`${setup.label}: regenerate() drops the binding like any data`, async (t) => {
    const { app, login, send } = await devicesApp(t, setup)
    app.post('/forget', async (request) => {
      await request.session.regenerate()
      request.session.set('user', 'guest')
      return { userId: request.session.userId ?? null, handle: request.session.handle ?? null }
    })
    const cookie = await login()
    const forgotten = await send('/forget', cookie, 'POST')
    t.same(forgotten.json(), { userId: null, handle: null })
    t.same(await app.sessions.list('ada'), [])
    t.same((await send('/whoami', cookieValue(forgotten, setup.cookieName)!)).json().userId, null)
  })
}

t.test('bindUser() takes a non-empty string; binding the same user again changes nothing', async (t) => {
  const app = await buildApp(t, { mode: 'archive', archive: new MemoryArchive() })
  app.post('/bind', async (request) => {
    const codes = []
    for (const value of ['', 42, 'x'.repeat(257), undefined]) {
      try {
        request.session.bindUser(value as string)
        codes.push('none')
      } catch (error) {
        codes.push((error as { code: string }).code)
      }
    }
    request.session.bindUser('ada')
    const handle = request.session.handle
    request.session.bindUser('ada')
    return { codes, same: handle === request.session.handle }
  })
  t.same((await app.inject({ method: 'POST', url: '/bind' })).json(), { codes: Array(4).fill('FST_SESSION_INVALID_ARGUMENT'), same: true })
})

t.test('a session moved to another user leaves the first user\'s index', async (t) => {
  const app = await buildApp(t, { mode: 'archive', archive: new MemoryArchive() })
  app.post('/bind', async (request) => {
    request.session.bindUser((request.query as { user: string }).user)
    return 'ok'
  })
  const first = await app.inject({ method: 'POST', url: '/bind?user=ada' })
  await app.inject({ method: 'POST', url: '/bind?user=bob', cookies: { 'session-id': cookieValue(first, 'session-id')! } })
  t.same(await app.sessions.list('ada'), [])
  t.equal((await app.sessions.list('bob')).length, 1)
})

t.test('app.sessions needs an archive: plain cookie mode throws FST_SESSION_NOT_REVOCABLE, and bad arguments are refused', async (t) => {
  const app = await buildApp(t)
  await t.rejects(app.sessions.list('ada'), { code: 'FST_SESSION_NOT_REVOCABLE' })
  await t.rejects(app.sessions.revoke('x'), { code: 'FST_SESSION_NOT_REVOCABLE' })
  await t.rejects(app.sessions.revokeUser('ada'), { code: 'FST_SESSION_NOT_REVOCABLE' })
  const archived = await buildApp(t, { mode: 'archive', archive: new MemoryArchive() })
  await t.rejects(archived.sessions.list(''), { code: 'FST_SESSION_INVALID_ARGUMENT' })
  await t.rejects(archived.sessions.revokeUser(7 as never), { code: 'FST_SESSION_INVALID_ARGUMENT' })
  await t.rejects(archived.sessions.revokeUser('ada', { except: 7 as never }), { code: 'FST_SESSION_INVALID_ARGUMENT' })
})

t.test('a user index never names the user: the archive holds only an HMAC of the id', async (t) => {
  const names: string[] = []
  const inner = new MemoryArchive()
  const archive: Archive = new Proxy(inner, {
    get (target, property) {
      const value = Reflect.get(target, property, target) as unknown
      if (typeof value !== 'function') return value
      return (...args: unknown[]) => {
        names.push(String(args[0]), String(args[1]), String(args[2] ?? ''), String(args[3] ?? ''))
        return (value as (...a: unknown[]) => unknown).apply(target, args)
      }
    }
  })
  const app = await buildApp(t, { mode: 'archive', archive })
  app.post('/bind', async (request) => { request.session.bindUser('alice@example.com'); return 'ok' })
  await app.inject({ method: 'POST', url: '/bind' })
  t.ok(names.some((name) => name.startsWith('user-')), 'a user index was written')
  t.notOk(names.some((name) => name.includes('alice@example.com') && name.startsWith('user-')), 'no domain or key names the user')
})

t.test('a user keeps at most 1,000 sessions: binding one more ends the oldest', async (t) => {
  const { UserSessions, MAX_USER_SESSIONS } = await import('../lib/user-sessions.js')
  const archive = new MemoryArchive({ maxSessions: 5000 })
  const ended: string[] = []
  const users = new UserSessions(() => archive, ['a-test-secret-that-is-32-chars!!'], async () => Date.now(), async (entry) => { ended.push(entry.i) })
  const now = Date.now()
  for (let i = 0; i <= MAX_USER_SESSIONS; i++) {
    await users.add(users.newHandle('ada'), { m: 'a', i: `id-${i}`, c: now + i, e: now + 3_600_000 }, now)
  }
  t.same(ended, ['id-0'])
  t.equal((await users.list('ada', now)).length, MAX_USER_SESSIONS)
})

t.test('after a secret rotation, list() and revokeUser() still find the sessions bound under the old secret', async (t) => {
  const { OTHER_SECRET, SECRET } = await import('./helpers/app.js')
  for (const mode of ['archive', 'cookie'] as const) {
    const archive = new MemoryArchive()
    const name = mode === 'archive' ? 'session-id' : 'session'
    const routes = (app: FastifyInstance): void => {
      app.post('/login', async (request) => { await request.session.regenerate(); request.session.set('user', 'ada'); request.session.bindUser('ada'); return 'ok' })
      app.get('/me', async (request) => ({ user: request.session.get('user') ?? null }))
    }
    const before = await buildApp(t, { mode, revocable: mode === 'cookie', archive, secret: SECRET })
    routes(before)
    const cookie = cookieValue(await before.inject({ method: 'POST', url: '/login' }), name)!
    const after = await buildApp(t, { mode, revocable: mode === 'cookie', archive, secret: [OTHER_SECRET, SECRET] })
    routes(after)
    t.equal((await after.sessions.list('ada')).length, 1, `${mode} mode: listed after the rotation`)
    t.equal(await after.sessions.revokeUser('ada'), 1)
    t.same((await after.inject({ url: '/me', cookies: { [name]: cookie } })).json(), { user: null }, `${mode} mode: signed out`)
  }
})

t.test('apps sharing an archive end each other\'s sessions of one user, cookie and archive alike', async (t) => {
  const archive = new MemoryArchive()
  const web = await buildApp(t, { mode: 'cookie', revocable: true, archive })
  const api = await buildApp(t, { mode: 'archive', archive })
  for (const app of [web, api]) {
    app.post('/login', async (request) => { await request.session.regenerate(); request.session.set('user', 'ada'); request.session.bindUser('ada'); return 'ok' })
    app.get('/me', async (request) => ({ user: request.session.get('user') ?? null }))
  }
  const webCookie = cookieValue(await web.inject({ method: 'POST', url: '/login' }), 'session')!
  const apiCookie = cookieValue(await api.inject({ method: 'POST', url: '/login' }), 'session-id')!
  t.same((await api.sessions.list('ada')).map((session) => session.mode).sort(), ['archive', 'cookie'])
  t.equal(await api.sessions.revokeUser('ada'), 2)
  t.same((await web.inject({ url: '/me', cookies: { session: webCookie } })).json(), { user: null })
  t.same((await api.inject({ url: '/me', cookies: { 'session-id': apiCookie } })).json(), { user: null })
})

t.test('an archive-mode app refuses bindUser() on a cookie-mode route without revocable, which it could neither list nor revoke', async (t) => {
  const app = await buildApp(t, { mode: 'archive', archive: new MemoryArchive() })
  app.post('/login-cookie', { config: { session: 'cookie' } }, async (request) => { request.session.bindUser('ada'); return 'ok' })
  const response = await app.inject({ method: 'POST', url: '/login-cookie' })
  t.equal(response.statusCode, 500)
  t.equal(response.json().code, 'FST_SESSION_NOT_REVOCABLE')
})

t.test('plain cookie mode keeps a binding in the seal, with app.sessions unavailable', async (t) => {
  const app = await buildApp(t)
  app.post('/login', async (request) => { request.session.bindUser('ada'); return 'ok' })
  app.get('/me', async (request) => ({ userId: request.session.userId ?? null }))
  const cookie = cookieValue(await app.inject({ method: 'POST', url: '/login' }))!
  t.same((await app.inject({ url: '/me', cookies: { session: cookie } })).json(), { userId: 'ada' })
})
