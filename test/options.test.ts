import Fastify from 'fastify'
import t, { type Test } from 'tap'
import { MemoryArchive, fastifySessions, type FastifySessionsOptions } from '../lib/index.js'
import { resolveOptions } from '../lib/options.js'
import { addSessionRoutes, buildApp, LogCapture, SECRET, setCookies } from './helpers/app.js'
import { ironSeal, ironUnseal, pluginSeal, sessionPayload } from './helpers/iron.js'

async function registrationError (t: Test, options: unknown): Promise<unknown> {
  const app = Fastify()
  t.teardown(() => app.close())
  app.register(fastifySessions, options as FastifySessionsOptions)
  return app.ready().then(() => undefined, (err: unknown) => err)
}

const invalid: Array<[string, unknown]> = [
  ['options that are not an object', 'secret'],
  ['options that are an array', [SECRET]],
  ['no secret', {}],
  ['a secret that is a number', { secret: 42 }],
  ['an empty list of secrets', { secret: [] }],
  ['a list holding a non-string', { secret: [SECRET, 42] }],
  ['a cookieName that is not a string', { secret: SECRET, cookieName: 42 }],
  ['a cookieName with a space', { secret: SECRET, cookieName: 'my session' }],
  ['an empty cookieName', { secret: SECRET, cookieName: '' }],
  ['an idCookieName with a semicolon', { secret: SECRET, idCookieName: 'a;b' }],
  ['an idCookieName equal to cookieName', { secret: SECRET, cookieName: 'sid', idCookieName: 'sid' }],
  ['an unknown mode', { secret: SECRET, mode: 'redis' }],
  ['a mode that is not a string', { secret: SECRET, mode: true }],
  ['an archive that is not an object', { secret: SECRET, archive: 'memory' }],
  ['an archive without its methods', { secret: SECRET, archive: { get () {} } }],
  ['a maxAge of 0', { secret: SECRET, maxAge: 0 }],
  ['a negative maxAge', { secret: SECRET, maxAge: -5 }],
  ['a fractional maxAge', { secret: SECRET, maxAge: 1.5 }],
  ['a maxAge given as a string', { secret: SECRET, maxAge: '3600' }],
  ['a maxAge past the safe integers', { secret: SECRET, maxAge: 2 ** 53 }],
  ['an absoluteTimeout of NaN', { secret: SECRET, absoluteTimeout: Number.NaN }],
  ['a rolling that is not a boolean', { secret: SECRET, rolling: 'yes' }],
  ['cookie options that are not an object', { secret: SECRET, cookie: 'secure' }],
  ['cookie options that are an array', { secret: SECRET, cookie: [] }],
  ['a path that is not a string', { secret: SECRET, cookie: { path: 42 } }],
  ['a relative path', { secret: SECRET, cookie: { path: 'app' } }],
  ['a path with a semicolon', { secret: SECRET, cookie: { path: '/a;b' } }],
  ['a domain that is not a string', { secret: SECRET, cookie: { domain: 42 } }],
  ['a domain with a path', { secret: SECRET, cookie: { domain: 'example.com/a' } }],
  ['a secure that is a string other than auto', { secret: SECRET, cookie: { secure: 'yes' } }],
  ['an unknown sameSite', { secret: SECRET, cookie: { sameSite: 'loose' } }],
  ['a capitalised sameSite', { secret: SECRET, cookie: { sameSite: 'Lax' } }],
  ['an httpOnly that is not a boolean', { secret: SECRET, cookie: { httpOnly: 1 } }],
  ['a partitioned that is not a boolean', { secret: SECRET, cookie: { partitioned: 'true' } }],
  ['sameSite none without secure', { secret: SECRET, cookie: { sameSite: 'none', secure: false } }],
  ['partitioned without secure', { secret: SECRET, cookie: { partitioned: true, secure: false } }],
  ['a __Secure- cookie with secure auto', { secret: SECRET, cookieName: '__Secure-session' }],
  ['a __Secure- cookie with secure false', { secret: SECRET, cookieName: '__Secure-session', cookie: { secure: false } }],
  ['a __Host- cookie with secure auto', { secret: SECRET, cookieName: '__Host-session' }],
  ['a __Host- cookie with a path other than /', { secret: SECRET, cookieName: '__Host-session', cookie: { secure: true, path: '/app' } }],
  ['a __Host- cookie with a domain', { secret: SECRET, cookieName: '__Host-session', cookie: { secure: true, domain: 'example.com' } }],
  ['cookieSize options that are not an object', { secret: SECRET, cookieSize: 4096 }],
  ['a cookieSize.max of 0', { secret: SECRET, cookieSize: { max: 0 } }],
  ['a fractional cookieSize.warn', { secret: SECRET, cookieSize: { warn: 10.5 } }],
  ['a cookieSize.warn above cookieSize.max', { secret: SECRET, cookieSize: { warn: 2000, max: 1000 } }],
  ['a persistent that is not a boolean', { secret: SECRET, cookie: { persistent: 'no' } }],
  ['a revocable that is not a boolean', { secret: SECRET, revocable: 1 }],
  ['a maxSize below 1024', { secret: SECRET, maxSize: 1023 }],
  ['a maxSize above 16 MiB', { secret: SECRET, maxSize: 16 * 1024 * 1024 + 1 }],
  ['a fractional maxSize', { secret: SECRET, maxSize: 4096.5 }],
  ['a maxSize given as a string', { secret: SECRET, maxSize: '64kb' }],
  ['a cookieSize.overflow other than error', { secret: SECRET, cookieSize: { overflow: 'truncate' } }],
  ['a cookieSize.overflow that is not a string', { secret: SECRET, cookieSize: { overflow: true } }],
  ['a maxAge above absoluteTimeout', { secret: SECRET, maxAge: 120, absoluteTimeout: 60 }]
]

for (const [name, options] of invalid) {
  t.test(`${name} fails registration with FST_SESSION_INVALID_OPTION`, async (t) => {
    t.match(await registrationError(t, options), { code: 'FST_SESSION_INVALID_OPTION' })
  })
}

const short: Array<[string, unknown]> = [
  ['a secret of 31 characters', SECRET.slice(1)],
  ['an empty secret', ''],
  ['a short secret in second place of a list', [SECRET, 'too-short']]
]

for (const [name, secret] of short) {
  t.test(`${name} fails registration with FST_SESSION_SECRET_TOO_SHORT`, async (t) => {
    t.match(await registrationError(t, { secret }), { code: 'FST_SESSION_SECRET_TOO_SHORT' })
  })
}

t.test('valid options register', async (t) => {
  const noop = (): void => {}
  const valid: Array<Partial<FastifySessionsOptions>> = [
    { secret: [SECRET] },
    { mode: 'cookie', maxAge: 60, absoluteTimeout: 120, rolling: true },
    { cookieName: '__Secure-session', cookie: { secure: true, domain: 'example.com', path: '/app' } },
    { cookieName: '__Host-session', cookie: { secure: true } },
    { cookie: { sameSite: 'none', partitioned: true } },
    { cookie: { sameSite: 'strict', secure: false, httpOnly: false, domain: '.example.com' } },
    { cookieSize: {} },
    { cookieSize: { warn: 1000, max: 1000 } },
    { cookieSize: { overflow: 'error' } },
    { cookie: { persistent: false } },
    { revocable: true, maxSize: 1024 },
    { revocable: true, mode: 'cookie', archive: new MemoryArchive() },
    { revocable: true, mode: 'archive', archive: new MemoryArchive() },
    { maxSize: 16 * 1024 * 1024 },
    { maxAge: 3600, absoluteTimeout: 3600 },
    { archive: { get: noop, set: noop, has: noop, remove: noop, hasDomain: noop, removeDomain: noop } as unknown as NonNullable<FastifySessionsOptions['archive']> }
  ]
  for (const options of valid) {
    t.equal(await registrationError(t, { secret: SECRET, ...options }), undefined, JSON.stringify(options))
  }
})

t.test('a cookieSize.max below the default warning threshold brings the threshold down with it', async (t) => {
  const logs = new LogCapture()
  const probe = await buildApp(t)
  addSessionRoutes(probe)
  const bytes = setCookies(await probe.inject('/write'))[0]!.length

  const app = await buildApp(t, { cookieSize: { max: bytes } }, logs.server)
  addSessionRoutes(app)
  const response = await app.inject('/write')
  t.equal(response.statusCode, 200)
  t.match(logs.withCode('FST_SESSION_COOKIE_NEAR_LIMIT'), [{ bytes, limit: bytes }])
})

t.test('the defaults: cookie "session", Path=/, HttpOnly, SameSite=Lax, Secure only over https, Max-Age of one day', async (t) => {
  const app = await buildApp(t, {}, { trustProxy: true })
  addSessionRoutes(app)
  const plain = await app.inject('/write')
  t.match(setCookies(plain), [/^session=Fe26\.2\*[^;]+; Max-Age=86400; Path=\/; HttpOnly; SameSite=Lax$/])
  const https = await app.inject({ url: '/write', headers: { 'x-forwarded-proto': 'https' } })
  t.match(setCookies(https), [/^session=Fe26\.2\*[^;]+; Max-Age=86400; Path=\/; HttpOnly; SameSite=Lax; Secure$/])
})

t.test('the defaults: a session is idle after one day and ends seven days after its creation', async (t) => {
  const logs = new LogCapture()
  const app = await buildApp(t, {}, logs.server)
  addSessionRoutes(app)
  const day = 24 * 60 * 60 * 1000
  const now = Date.now()
  const read = async (created: number, issued: number): Promise<unknown> => {
    const token = await ironSeal(sessionPayload({ user: 'ada' }, { created, issued }))
    return (await app.inject({ url: '/read', cookies: { session: token } })).json()
  }
  t.same(await read(now - day + 60_000, now - day + 60_000), { isNew: false, user: 'ada' }, 'idle for a minute less than a day')
  t.same(await read(now - day - 1000, now - day - 1000), { isNew: true, user: null }, 'idle for a day')
  t.same(await read(now - 7 * day + 60_000, now), { isNew: false, user: 'ada' }, 'created a minute less than seven days ago')
  t.same(await read(now - 7 * day - 1000, now), { isNew: true, user: null }, 'created seven days ago')
  t.equal(logs.withCode('FST_SESSION_COOKIE_REJECTED').length, 2)
})

t.test('the defaults: the mode is cookie and rolling is off', async (t) => {
  const app = await buildApp(t)
  addSessionRoutes(app)
  app.get('/mode', async (request) => ({ mode: request.session.mode }))
  t.same((await app.inject('/mode')).json(), { mode: 'cookie' })
  const token = pluginSeal(sessionPayload({ user: 'ada' }))
  const read = await app.inject({ url: '/read', cookies: { session: token } })
  t.same(read.json(), { isNew: false, user: 'ada' })
  t.same(setCookies(read), [], 'a read re-issues nothing')
})

t.test('a custom cookieName names the cookie that is read and written', async (t) => {
  const app = await buildApp(t, { cookieName: 'app.sid' })
  addSessionRoutes(app)
  const write = await app.inject('/write?user=grace')
  t.match(setCookies(write), [/^app\.sid=Fe26\.2\*/])
  const token = write.cookies[0]!.value
  t.match(await ironUnseal(token), { d: { user: 'grace' } })
  t.same((await app.inject({ url: '/read', cookies: { 'app.sid': token } })).json(), { isNew: false, user: 'grace' })
  t.same((await app.inject({ url: '/read', cookies: { session: token } })).json(), { isNew: true, user: null }, 'the default name is not read')
})

t.test('the resolved options hold the new options at their defaults: persistent, revocable, maxSize and cookieSize.overflow', async (t) => {
  const options = resolveOptions({ secret: SECRET })
  t.equal(options.cookie.persistent, true)
  t.equal(options.revocable, false)
  t.equal(options.maxSize, 65536)
  t.equal(options.cookieSize.overflow, 'error')
  t.ok(Object.isFrozen(options) && Object.isFrozen(options.cookie) && Object.isFrozen(options.cookieSize), 'frozen')
  const given = resolveOptions({ secret: SECRET, revocable: true, maxSize: 1 << 20, cookie: { persistent: false }, cookieSize: { overflow: 'error' } })
  t.match(given, { revocable: true, maxSize: 1 << 20, cookie: { persistent: false }, cookieSize: { overflow: 'error' } })
})

t.test('an invalid option error carries the option as a property', async (t) => {
  t.match(await registrationError(t, { secret: SECRET, cookie: { sameSite: 'loose' } }), { code: 'FST_SESSION_INVALID_OPTION', option: 'cookie.sameSite' })
  t.match(await registrationError(t, { secret: SECRET, types: [{}] }), { code: 'FST_SESSION_INVALID_OPTION', option: 'types[0]' })
})

t.test('cookieSize.overflow takes error, archive or chunk, and nothing else', async (t) => {
  const error = await registrationError(t, { secret: SECRET, cookieSize: { overflow: 'drop' } })
  t.match(error, { code: 'FST_SESSION_INVALID_OPTION', option: 'cookieSize.overflow' })
  t.match((error as Error).message, "must be one of 'error', 'archive', 'chunk'")
})

t.test('cookieSize.overflow is archive when the plugin is given an archive, and error otherwise', async (t) => {
  t.equal(resolveOptions({ secret: SECRET }).cookieSize.overflow, 'error')
  t.equal(resolveOptions({ secret: SECRET, mode: 'cookie', archive: new MemoryArchive() }).cookieSize.overflow, 'archive')
  t.equal(resolveOptions({ secret: SECRET, archive: new MemoryArchive(), cookieSize: { overflow: 'error' } }).cookieSize.overflow, 'error')
})

t.test('cookieSize.maxTotal is 8192, applies only to chunks, and stays under what Node accepts', async (t) => {
  t.equal(resolveOptions({ secret: SECRET, cookieSize: { overflow: 'chunk' } }).cookieSize.maxTotal, 8192)
  t.equal(resolveOptions({ secret: SECRET, cookieSize: { overflow: 'chunk', maxTotal: 12288 } }).cookieSize.maxTotal, 12288)
  const tooLarge = await registrationError(t, { secret: SECRET, cookieSize: { overflow: 'chunk', maxTotal: 12289 } })
  t.match(tooLarge, { code: 'FST_SESSION_INVALID_OPTION', option: 'cookieSize.maxTotal' })
  t.match((tooLarge as Error).message, 'at most 12288: Node refuses a request whose headers pass 16 KiB')
  t.match((await registrationError(t, { secret: SECRET, cookieSize: { maxTotal: 9000 } }) as Error).message, "applies only with cookieSize.overflow: 'chunk'")
  t.match((await registrationError(t, { secret: SECRET, cookieSize: { overflow: 'chunk', maxTotal: 4000 } }) as Error).message, 'must not be below cookieSize.max (4096)')
})

t.test('idCookieName may not be one of the cookies the sealed cookie overflows into', async (t) => {
  const moved = await registrationError(t, { secret: SECRET, cookieName: 'sid', idCookieName: 'sid.id', cookieSize: { overflow: 'archive' } })
  t.match(moved, { code: 'FST_SESSION_INVALID_OPTION', option: 'idCookieName' })
  t.match((moved as Error).message, 'overflows into (sid.id)')
  const chunk = await registrationError(t, { secret: SECRET, cookieName: 'sid', idCookieName: 'sid.3', cookieSize: { overflow: 'chunk' } })
  t.match((chunk as Error).message, 'overflows into (sid.0, sid.1, ...)')
  t.equal(resolveOptions({ secret: SECRET, cookieName: 'sid', idCookieName: 'sid.id', cookieSize: { overflow: 'chunk' } }).idCookieName, 'sid.id')
  t.equal(resolveOptions({ secret: SECRET, cookieName: 'sid', idCookieName: 'sid.x1', cookieSize: { overflow: 'chunk' } }).idCookieName, 'sid.x1')
  t.equal(resolveOptions({ secret: SECRET, cookieName: 'sid', idCookieName: 'sid.7' }).idCookieName, 'sid.7')
})

t.test('a maxAge above absoluteTimeout is refused naming both options and both values', async (t) => {
  const remember = await registrationError(t, { secret: SECRET, maxAge: 30 * 24 * 60 * 60 })
  t.match(remember, { code: 'FST_SESSION_INVALID_OPTION', option: 'maxAge' })
  t.match((remember as Error).message, /"maxAge" \(2592000, 30 days\).*absoluteTimeout \(604800, its default, 7 days\)/)
  t.match((remember as Error).message, /absoluteTimeout to at least 2592000/)
  const given = await registrationError(t, { secret: SECRET, maxAge: 7200, absoluteTimeout: 3600 })
  t.match((given as Error).message, /"maxAge" \(7200, 2 hours\).*absoluteTimeout \(3600, 1 hour\)/)
  t.notMatch((given as Error).message, /default/, 'a given absoluteTimeout is not called the default')
  t.match((await registrationError(t, { secret: SECRET, maxAge: 90, absoluteTimeout: 61 }) as Error).message, /\(90, 90 seconds\).*\(61, 61 seconds\)/)
})

t.test('a maxAge above absoluteTimeout that looks like milliseconds says so', async (t) => {
  const error = await registrationError(t, { secret: SECRET, maxAge: 86_400_000 })
  t.match(error, { code: 'FST_SESSION_INVALID_OPTION', option: 'maxAge' })
  t.match((error as Error).message, /86400000 looks like milliseconds: maxAge: 86400$/)
})

t.test('revocable with an archive but no mode is refused naming mode', async (t) => {
  t.match(await registrationError(t, { secret: SECRET, revocable: true, archive: new MemoryArchive() }), { code: 'FST_SESSION_INVALID_OPTION', option: 'mode' })
})

t.test('an archive given without a mode makes archive the default mode', async (t) => {
  const app = await buildApp(t, { archive: new MemoryArchive() })
  addSessionRoutes(app)
  app.get('/mode', async (request) => ({ mode: request.session.mode }))
  t.same((await app.inject('/mode')).json(), { mode: 'archive' })
  t.match(setCookies(await app.inject('/write')), [/^session-id=/])
})

t.test("an explicit mode 'cookie' with an archive stays cookie, the archive serving archive routes", async (t) => {
  const app = await buildApp(t, { mode: 'cookie', archive: new MemoryArchive() })
  addSessionRoutes(app)
  app.get('/mode', async (request) => ({ mode: request.session.mode }))
  app.get('/archived', { config: { session: 'archive' } }, async (request) => {
    request.session.set('user', 'ada')
    return { mode: request.session.mode }
  })
  t.same((await app.inject('/mode')).json(), { mode: 'cookie' })
  t.match(setCookies(await app.inject('/write')), [/^session=Fe26\.2\*/])
  const archived = await app.inject('/archived')
  t.same(archived.json(), { mode: 'archive' })
  t.match(setCookies(archived), [/^session-id=/])
})
