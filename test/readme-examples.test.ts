// The code examples of README.md, each built here as the README shows it
// (imports from '../lib/index.js' instead of 'fastify-sessions') and
// exercised with app.inject(). A change to an example goes in both places.
import session from 'express-session'
import Fastify, { type FastifyInstance, type LightMyRequestResponse } from 'fastify'
import { sealData } from 'iron-session'
import createMemoryStore from 'memorystore'
import t, { type Test } from 'tap'
import { ExpressStoreArchive, fastifySessions, MemoryArchive } from '../lib/index.js'

process.env.SESSION_SECRET ??= 'a-readme-example-secret-of-32-chars!'

/** The value of the cookie `name` that a response sets, or undefined. */
function cookieOf (response: LightMyRequestResponse, name: string): string | undefined {
  return response.cookies.find((cookie) => cookie.name === name)?.value
}

/** A client that keeps the cookies it is sent, as a browser does. */
function browser (app: FastifyInstance) {
  const jar: Record<string, string> = {}
  return {
    jar,
    async send (method: 'GET' | 'POST', url: string, payload?: Record<string, unknown>): Promise<LightMyRequestResponse> {
      const response = await app.inject({ method, url, cookies: { ...jar }, ...(payload === undefined ? {} : { payload }) })
      for (const cookie of response.cookies) {
        if (cookie.maxAge === 0) delete jar[cookie.name]
        else jar[cookie.name] = cookie.value
      }
      return response
    }
  }
}

function closeLater (t: Test, app: FastifyInstance): FastifyInstance {
  t.teardown(() => app.close())
  return app
}

// README: "Quick start"
async function quickStart (): Promise<FastifyInstance> {
  const app = Fastify()
  await app.register(fastifySessions, { secret: process.env.SESSION_SECRET! })

  app.post('/login', async (request) => {
    await request.session.regenerate() // a fresh session on every login
    request.session.set('user', { id: '42', name: 'Ada' })
    request.session.flash('Welcome back!')
    return { ok: true }
  })

  app.get('/', async (request) => ({
    user: request.session.get('user') ?? null,
    messages: request.session.flashes() // read once
  }))

  app.post('/logout', async (request) => {
    await request.session.destroy()
    return { ok: true }
  })

  app.get('/health', { config: { session: false } }, async () => 'ok') // no session at all
  return app
}

t.test('README quick start: login, a read with its flash, logout', async (t) => {
  const app = closeLater(t, await quickStart())
  const ada = browser(app)
  await ada.send('POST', '/login')
  t.match(ada.jar['session'], /^Fe26\.2\*/, 'the session is a sealed iron cookie')
  t.same((await ada.send('GET', '/')).json(), { user: { id: '42', name: 'Ada' }, messages: ['Welcome back!'] })
  t.same((await ada.send('GET', '/')).json(), { user: { id: '42', name: 'Ada' }, messages: [] })
  const logout = await ada.send('POST', '/logout')
  t.match(logout.headers['set-cookie'], /^session=; Max-Age=0;/)
  t.same((await ada.send('GET', '/')).json(), { user: null, messages: [] })
  const health = await app.inject('/health')
  t.equal(health.body, 'ok')
  t.equal(health.headers['set-cookie'], undefined)
})

// README: "Logout, revocation and devices"
async function devicesApp (): Promise<FastifyInstance> {
  // Stands for your user store and password check.
  const users = new Map([['ada', { id: 'u-1', password: 'correct horse battery staple' }]])

  const app = Fastify()
  await app.register(fastifySessions, {
    secret: process.env.SESSION_SECRET!,
    archive: new MemoryArchive() // archive mode; RedisArchive for several instances
  })

  app.post('/login', async (request, reply) => {
    const { name, password } = request.body as { name: string, password: string }
    const user = users.get(name)
    if (user === undefined || user.password !== password) return await reply.code(401).send({ error: 'wrong name or password' })
    await request.session.regenerate() // a new id: whatever cookie came in carries nothing over
    request.session.bindUser(user.id) // app.sessions can now list and end this session
    request.session.set('name', name)
    return { ok: true }
  })

  app.get('/devices', async (request, reply) => {
    const userId = request.session.userId
    if (userId === undefined) return await reply.code(401).send({ error: 'sign in first' })
    const sessions = await app.sessions.list(userId)
    return sessions.map((s) => ({ ...s, current: s.handle === request.session.handle }))
  })

  app.post('/devices/sign-out-others', async (request, reply) => {
    const userId = request.session.userId
    if (userId === undefined) return await reply.code(401).send({ error: 'sign in first' })
    const ended = await app.sessions.revokeUser(userId, { except: request.session.handle })
    return { ended }
  })

  app.post('/devices/:handle/sign-out', async (request, reply) => {
    const userId = request.session.userId
    const { handle } = request.params as { handle: string }
    // Only a handle from this user's own list: revoke() ends any session it names.
    const mine = userId !== undefined && (await app.sessions.list(userId)).some((s) => s.handle === handle)
    if (!mine) return await reply.code(404).send({ error: 'no such device' })
    await app.sessions.revoke(handle)
    return { ok: true }
  })

  app.post('/logout', async (request) => {
    await request.session.destroy()
    return { ok: true }
  })
  return app
}

t.test('README devices: each login is a device, this one marked; other devices signed out; logout ends this one', async (t) => {
  const app = closeLater(t, await devicesApp())
  const credentials = { name: 'ada', password: 'correct horse battery staple' }
  const phone = browser(app)
  const laptop = browser(app)
  const planted = 'planted-by-someone-else'
  phone.jar['session-id'] = planted
  await phone.send('POST', '/login', credentials)
  t.not(phone.jar['session-id'], planted, 'a login never keeps the cookie it came with')
  await laptop.send('POST', '/login', credentials)
  t.equal((await browser(app).send('POST', '/login', { name: 'ada', password: 'wrong' })).statusCode, 401)

  const devices = (await laptop.send('GET', '/devices')).json() as Array<{ handle: string, mode: string, current: boolean }>
  t.equal(devices.length, 2)
  t.same(devices.map((device) => device.current).sort(), [false, true])
  t.ok(devices.every((device) => device.mode === 'archive'))

  const phoneCookie = phone.jar['session-id']!
  t.same((await laptop.send('POST', '/devices/sign-out-others')).json(), { ended: 1 })
  t.equal((await phone.send('GET', '/devices')).statusCode, 401, 'the phone is signed out')
  t.equal((await app.inject({ url: '/devices', cookies: { 'session-id': phoneCookie } })).statusCode, 401, 'and its old cookie opens nothing')
  t.equal(((await laptop.send('GET', '/devices')).json() as unknown[]).length, 1, 'this device stays')

  await phone.send('POST', '/login', credentials)
  const other = ((await laptop.send('GET', '/devices')).json() as Array<{ handle: string, current: boolean }>).find((device) => !device.current)!
  t.equal((await browser(app).send('POST', `/devices/${other.handle}/sign-out`)).statusCode, 404, 'a stranger cannot end a device of ada')
  t.same((await laptop.send('POST', `/devices/${other.handle}/sign-out`)).json(), { ok: true })
  t.equal((await phone.send('GET', '/devices')).statusCode, 401)

  const laptopCookie = laptop.jar['session-id']!
  await laptop.send('POST', '/logout')
  t.equal(laptop.jar['session-id'], undefined, 'logout clears the cookie')
  t.equal((await app.inject({ url: '/devices', cookies: { 'session-id': laptopCookie } })).statusCode, 401, 'and a copy of it opens nothing')
  t.same(await app.sessions.list('u-1'), [])
})

// README: "Replies that bypass onSend"
async function eventsApp (): Promise<FastifyInstance> {
  const app = Fastify()
  await app.register(fastifySessions, { secret: process.env.SESSION_SECRET! })

  app.get('/events', async (request, reply) => {
    request.session.set('subscribed', true)
    reply.hijack()
    await request.session.save() // before the first byte
    reply.raw.writeHead(200, {
      'set-cookie': request.session.cookieHeaders(),
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache'
    })
    reply.raw.end('data: hello\n\n') // a real stream keeps writing; this one ends after one event
  })
  app.get('/subscribed', async (request) => ({ subscribed: request.session.get('subscribed') ?? false }))
  return app
}

t.test('README server-sent events: the session cookie goes out with the head the handler writes', async (t) => {
  const app = closeLater(t, await eventsApp())
  const response = await app.inject('/events')
  t.equal(response.body, 'data: hello\n\n')
  const cookies = ([] as string[]).concat(response.headers['set-cookie'] ?? [])
  t.equal(cookies.length, 1, 'one Set-Cookie for the session')
  t.same((await app.inject({ url: '/subscribed', cookies: { session: cookieOf(response, 'session')! } })).json(), { subscribed: true })
})

// README: "When the session outgrows its cookie"
async function overflowToArchive (): Promise<FastifyInstance> {
  const app = Fastify()
  await app.register(fastifySessions, {
    secret: process.env.SESSION_SECRET!,
    mode: 'cookie',
    archive: new MemoryArchive(), // one instance; RedisArchive for several
    cookieSize: { overflow: 'archive' } // the default with an archive; shown for clarity
  })

  app.post('/cart', async (request) => {
    const cart = (request.session.get('cart') ?? []) as string[]
    cart.push((request.body as { item: string }).item)
    request.session.set('cart', cart)
    return { items: cart.length, lives: request.session.mode } // 'cookie' until it outgrows it, then 'archive'
  })
  return app
}

t.test('README overflow: a cart that outgrows its cookie moves to the archive, and the handler never knows', async (t) => {
  const app = closeLater(t, await overflowToArchive())
  const client = browser(app)
  const item = 'a product with a long description '.repeat(10)
  let last: { items: number, lives: string } = { items: 0, lives: '' }
  for (let i = 1; i <= 30 && client.jar['session.id'] === undefined; i++) {
    last = (await client.send('POST', '/cart', { item })).json()
    t.same(last, { items: i, lives: 'cookie' }, `item ${i}: the handler saw the session it was sent, a sealed cookie`)
  }
  t.ok(last.items > 5, `moved after ${last.items} items`)
  t.same(Object.keys(client.jar), ['session.id'], 'the session now lives in the archive')
  t.same((await client.send('POST', '/cart', { item })).json(), { items: last.items + 1, lives: 'archive' }, 'and says so; no item was lost')
})

// README: "Coming from another session plugin", @fastify/session
async function fromFastifySession (): Promise<FastifyInstance> {
  const app = Fastify()
  await app.register(fastifySessions, {
    secret: process.env.SESSION_SECRET!,
    archive: new MemoryArchive(), // was: store; RedisArchive, FileArchive or ExpressStoreArchive(store) too
    maxAge: 1800, // was: cookie: { maxAge: 1_800_000 } (milliseconds)
    rolling: true // was the default there
  })

  app.post('/login', async (request) => {
    await request.session.regenerate() // starts empty: there, it kept the data
    request.session.set('user', { id: '42' }) // was: request.session.user = { id: '42' }
    return { ok: true }
  })
  app.get('/me', async (request) => ({ user: request.session.get('user') ?? null, id: request.session.id }))
  app.post('/logout', async (request) => {
    await request.session.destroy()
    return { ok: true }
  })
  return app
}

t.test('README migration from @fastify/session', async (t) => {
  const app = closeLater(t, await fromFastifySession())
  const ada = browser(app)
  await ada.send('POST', '/login')
  const me = (await ada.send('GET', '/me'))
  t.same(me.json().user, { id: '42' })
  t.match(me.headers['set-cookie'], /Max-Age=1800/, 'rolling: every request re-issues the cookie')
  await ada.send('POST', '/logout')
  t.same((await ada.send('GET', '/me')).json().user, null)
})

// README: "Coming from another session plugin", @fastify/secure-session
async function fromSecureSession (): Promise<FastifyInstance> {
  const app = Fastify()
  await app.register(fastifySessions, {
    secret: process.env.SESSION_SECRET!, // was: key (32 bytes) or secret + salt
    maxAge: 86400 // was: expiry, in seconds there too
  })

  app.post('/login', async (request) => {
    await request.session.regenerate()
    request.session.set('user', { id: '42' }) // set() and get() as there
    return { ok: true }
  })
  app.get('/me', async (request) => ({ user: request.session.get('user') ?? null }))
  app.post('/logout', async (request) => {
    await request.session.destroy() // was: request.session.delete()
    return { ok: true }
  })
  return app
}

t.test('README migration from @fastify/secure-session', async (t) => {
  const app = closeLater(t, await fromSecureSession())
  const ada = browser(app)
  await ada.send('POST', '/login')
  t.same((await ada.send('GET', '/me')).json(), { user: { id: '42' } })
  await ada.send('POST', '/logout')
  t.same((await ada.send('GET', '/me')).json(), { user: null })
})

// README: "Coming from another session plugin", @mgcrea/fastify-session
async function fromMgcrea (): Promise<FastifyInstance> {
  const app = Fastify()
  await app.register(fastifySessions, {
    secret: process.env.SESSION_SECRET!,
    archive: new MemoryArchive(), // was: store (or crypto: SODIUM_SECRETBOX with no store: leave archive out)
    maxAge: 86400 // was: cookie: { maxAge: 86400 }
  })

  app.post('/login', async (request) => {
    await request.session.regenerate()
    request.session.set('user', { id: '42' })
    return { ok: true }
  })
  app.get('/me', async (request) => ({ user: request.session.get('user') ?? null }))
  app.post('/logout', async (request) => {
    await request.session.destroy()
    return { ok: true }
  })
  return app
}

t.test('README migration from @mgcrea/fastify-session', async (t) => {
  const app = closeLater(t, await fromMgcrea())
  const ada = browser(app)
  await ada.send('POST', '/login')
  t.same((await ada.send('GET', '/me')).json(), { user: { id: '42' } })
  await ada.send('POST', '/logout')
  t.same((await ada.send('GET', '/me')).json(), { user: null })
})

// README: "Coming from another session plugin", iron-session
async function fromIronSession (): Promise<FastifyInstance> {
  const app = Fastify()
  await app.register(fastifySessions, {
    secret: process.env.SESSION_SECRET!, // was: password
    cookieName: 'my-app', // was: cookieName
    maxAge: 1209600, // was: ttl (seconds); the default there is 14 days,
    absoluteTimeout: 1209600 // and a session here ends after 7 days unless told otherwise
  })

  app.post('/login', async (request) => {
    await request.session.regenerate()
    request.session.set('user', { id: '42' }) // was: session.user = { id: '42' }; await session.save()
    return { ok: true } // saved when the reply is sent
  })
  app.get('/me', async (request) => ({ user: request.session.get('user') ?? null }))
  app.post('/logout', async (request) => {
    await request.session.destroy() // was: session.destroy()
    return { ok: true }
  })
  return app
}

t.test('README migration from iron-session', async (t) => {
  const app = closeLater(t, await fromIronSession())
  const ada = browser(app)
  const login = await ada.send('POST', '/login')
  t.match(login.headers['set-cookie'], /^my-app=Fe26\.2\*.*Max-Age=1209600;/)
  t.same((await ada.send('GET', '/me')).json(), { user: { id: '42' } })
  await ada.send('POST', '/logout')
  t.same((await ada.send('GET', '/me')).json(), { user: null })
  const theirs = await sealData({ user: { id: '42' } }, { password: process.env.SESSION_SECRET! })
  t.same((await app.inject({ url: '/me', cookies: { 'my-app': theirs } })).json(), { user: null }, 'a cookie iron-session sealed is a fresh session here')
})

// README: "Coming from another session plugin", express-session
async function fromExpressSession (): Promise<FastifyInstance> {
  // The store the Express app had (connect-redis, connect-pg-simple, session-file-store...).
  const MemoryStore = createMemoryStore(session)
  const store = new MemoryStore({ checkPeriod: 60_000 })

  const app = Fastify()
  await app.register(fastifySessions, {
    secret: process.env.SESSION_SECRET!,
    idCookieName: 'connect.sid', // was: name
    archive: new ExpressStoreArchive(store), // was: store
    maxAge: 3600 // was: cookie: { maxAge: 3_600_000 } (milliseconds)
  })
  app.addHook('onClose', async () => store.stopInterval()) // the archive never closes the store

  app.get('/views', async (request) => {
    const views = Number(request.session.get('views') ?? 0) + 1 // was: req.session.views
    request.session.set('views', views)
    return { views }
  })
  app.post('/logout', async (request) => {
    await request.session.destroy() // was: req.session.destroy(callback)
    return { ok: true }
  })
  return app
}

t.test('README migration from express-session', async (t) => {
  const app = closeLater(t, await fromExpressSession())
  const ada = browser(app)
  t.same((await ada.send('GET', '/views')).json(), { views: 1 })
  t.ok(ada.jar['connect.sid'], 'the id cookie has the name the Express app used')
  t.same((await ada.send('GET', '/views')).json(), { views: 2 })
  await ada.send('POST', '/logout')
  t.same((await ada.send('GET', '/views')).json(), { views: 1 })
})

// README: "Coming from another session plugin": what each peer's options become
t.test('README migration: a peer option fails app.ready() naming it, with what to write instead', async (t) => {
  for (const [option, name, advice] of [
    [{ store: new Map() }, 'store', /archive/],
    [{ cookie: { maxAge: 1_800_000 } }, 'cookie.maxAge', /looks like milliseconds.*maxAge: 1800/],
    [{ password: 'x' }, 'password', /write secret instead/],
    [{ saveUninitialized: false }, 'saveUninitialized', /nothing to set/]
  ] as const) {
    const app = Fastify()
    app.register(fastifySessions, { secret: process.env.SESSION_SECRET!, ...option } as never)
    await t.rejects(async () => { await app.ready() }, { code: 'FST_SESSION_INVALID_OPTION', option: name, message: advice })
    await app.close()
  }
})

// README: "Logout, revocation and devices", why every login calls regenerate()
t.test('README fixation: a login that skips regenerate() keeps the session it was sent', async (t) => {
  for (const mode of ['archive', 'cookie'] as const) {
    const app = closeLater(t, Fastify())
    await app.register(fastifySessions, { secret: process.env.SESSION_SECRET!, mode, archive: new MemoryArchive() })
    app.post('/visit', async (request) => { request.session.set('planted', true); return 'ok' })
    app.post('/careless-login', async (request) => { request.session.set('user', 'ada'); return 'ok' })
    app.post('/login', async (request) => { await request.session.regenerate(); request.session.set('user', 'ada'); return 'ok' })
    app.get('/read', async (request) => request.session.data())
    const name = mode === 'archive' ? 'session-id' : 'session'
    const planted = cookieOf(await app.inject({ method: 'POST', url: '/visit' }), name)!
    const careless = await app.inject({ method: 'POST', url: '/careless-login', cookies: { [name]: planted } })
    const victim = cookieOf(careless, name) ?? planted
    t.same((await app.inject({ url: '/read', cookies: { [name]: victim } })).json(), { planted: true, user: 'ada' }, `${mode}: the login keeps what was planted`)
    const attacker = (await app.inject({ url: '/read', cookies: { [name]: planted } })).json()
    if (mode === 'archive') t.same(attacker, { planted: true, user: 'ada' }, 'archive mode: the planted id opens the login')
    else t.same(attacker, { planted: true }, 'cookie mode: the planted token opens only what it held')
    const safe = cookieOf(await app.inject({ method: 'POST', url: '/login', cookies: { [name]: planted } }), name)!
    t.same((await app.inject({ url: '/read', cookies: { [name]: safe } })).json(), { user: 'ada' }, `${mode}: regenerate() starts empty`)
  }
})

// README: "What each call does, per mode", the rows no other test covers for every mode
t.test('README per-mode table: revocable cookie mode retires the token regenerate() replaced; plain cookie mode cannot', async (t) => {
  for (const revocable of [true, false]) {
    const app = closeLater(t, Fastify())
    await app.register(fastifySessions, { secret: process.env.SESSION_SECRET!, mode: 'cookie', revocable, ...(revocable ? { archive: new MemoryArchive() } : {}) })
    app.post('/visit', async (request) => { request.session.set('visits', 1); return 'ok' })
    app.post('/login', async (request) => { await request.session.regenerate(); request.session.set('user', 'ada'); return 'ok' })
    app.post('/logout', async (request) => { await request.session.destroy(); return 'ok' })
    app.get('/read', async (request) => request.session.data())
    const read = async (cookie: string): Promise<unknown> => (await app.inject({ url: '/read', cookies: { session: cookie } })).json()
    const before = cookieOf(await app.inject({ method: 'POST', url: '/visit' }), 'session')!
    const after = cookieOf(await app.inject({ method: 'POST', url: '/login', cookies: { session: before } }), 'session')!
    t.same(await read(after), { user: 'ada' })
    t.same(await read(before), revocable ? {} : { visits: 1 }, revocable ? 'revocable: the token from before regenerate() opens nothing' : 'plain: it opens its old state only')
    await app.inject({ method: 'POST', url: '/logout', cookies: { session: after } })
    const replay = await app.inject({ method: 'POST', url: '/visit', cookies: { session: after } })
    if (revocable) {
      t.same(await read(after), {}, 'revocable: a copy after logout opens nothing')
    } else {
      const resealed = cookieOf(replay, 'session')!
      t.same(await read(resealed), { user: 'ada', visits: 1 }, 'plain: a write with a copy after logout is sealed into a new cookie, login included')
    }
  }
})
