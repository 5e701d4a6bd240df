import t from 'tap'
import { MemoryArchive } from '../lib/index.js'
import { buildApp, cookieValue, setCookies } from './helpers/app.js'
import { advanceClock } from './helpers/clock.js'
import { carry, sessionModes } from './helpers/session-modes.js'

for (const mode of sessionModes) {
  t.test(`${mode.name}: data(), keys() and toJSON() give the whole session, as a copy`, async (t) => {
    const { options } = await mode.setup(t)
    const app = await buildApp(t, options)
    app.post('/store', async (request) => {
      request.session.set('user', { name: 'ada' })
      request.session.set('when', new Date(0))
      return 'ok'
    })
    app.get('/all', async (request) => {
      const copy = request.session.data() as Record<string, unknown>
      ;(copy['user'] as { name: string }).name = 'changed'
      copy['extra'] = 1
      return {
        keys: request.session.keys(),
        isDate: request.session.data().when instanceof Date,
        json: JSON.parse(JSON.stringify(request.session)),
        user: request.session.get('user'),
        changed: request.session.changed
      }
    })
    const stored = await app.inject({ method: 'POST', url: '/store' })
    const all = await app.inject({ url: '/all', cookies: carry(mode, stored) })
    t.same(all.json(), {
      keys: ['user', 'when'],
      isDate: true,
      json: { user: { name: 'ada' }, when: '1970-01-01T00:00:00.000Z' },
      user: { name: 'ada' },
      changed: false
    }, 'changing the copy changed nothing in the session')
    t.same(setCookies(all), [], 'and nothing was stored again')
  })

  t.test(`${mode.name}: a value changed in place after get() is saved`, async (t) => {
    const { options } = await mode.setup(t)
    const app = await buildApp(t, options)
    app.post('/start', async (request) => { request.session.set('cart', ['book']); return 'ok' })
    app.post('/add', async (request) => {
      (request.session.get('cart') as string[]).push('pen')
      return 'ok'
    })
    app.post('/look', async (request) => ({ cart: request.session.get('cart') }))
    const started = await app.inject({ method: 'POST', url: '/start' })
    const added = await app.inject({ method: 'POST', url: '/add', cookies: carry(mode, started) })
    t.equal(setCookies(added).length, 1, 'the change is stored')
    const looked = await app.inject({ method: 'POST', url: '/look', cookies: carry(mode, added) })
    t.same(looked.json(), { cart: ['book', 'pen'] })
    t.same(setCookies(looked), [], 'a value only read is not stored again')
  })

  t.test(`${mode.name}: a value changed in place after get(), then set() again, is saved`, async (t) => {
    const { options } = await mode.setup(t)
    const app = await buildApp(t, options)
    app.post('/add', async (request) => {
      const cart = (request.session.get('cart') ?? []) as string[]
      cart.push(String(cart.length))
      request.session.set('cart', cart)
      return { changed: request.session.changed, items: cart.length }
    })
    const first = await app.inject({ method: 'POST', url: '/add' })
    const second = await app.inject({ method: 'POST', url: '/add', cookies: carry(mode, first) })
    t.same(second.json(), { changed: true, items: 2 }, 'the pushed item is a change')
    t.equal(setCookies(second).length, 1, 'and it is stored')
    const third = await app.inject({ method: 'POST', url: '/add', cookies: carry(mode, second) })
    t.equal(setCookies(third).length, 1)
    const looked = await app.inject({ method: 'POST', url: '/add', cookies: carry(mode, third) })
    t.same(looked.json(), { changed: true, items: 4 }, 'every item is kept')
  })

  t.test(`${mode.name}: setting a key to the value it holds changes nothing and sends nothing`, async (t) => {
    const { options, archive } = await mode.setup(t)
    const app = await buildApp(t, options)
    app.post('/set', async (request) => {
      request.session.set('theme', 'dark')
      request.session.set('prefs', { a: [1, 2] })
      return { changed: request.session.changed }
    })
    const first = await app.inject({ method: 'POST', url: '/set' })
    t.same(first.json(), { changed: true })
    const again = await app.inject({ method: 'POST', url: '/set', cookies: carry(mode, first) })
    t.same(again.json(), { changed: false }, 'the same stored form is no change')
    t.same(setCookies(again), [], 'no Set-Cookie')
    if (archive !== undefined) {
      const id = cookieValue(first, mode.cookieName)!.split('.')[0]!
      t.ok(await archive.has(id, 'session'), 'the stored session is untouched')
    }
  })

  t.test(`${mode.name}: createdAt and expiresAt tell when the session began and when it ends`, async (t) => {
    const { options } = await mode.setup(t)
    const app = await buildApp(t, { ...options, maxAge: 600, absoluteTimeout: 3600 })
    app.post('/when', async (request) => {
      const before = { createdAt: request.session.createdAt ?? null, expiresAt: request.session.expiresAt ?? null }
      request.session.set('n', ((request.session.get('n') as number | undefined) ?? 0) + 1)
      await request.session.save()
      return { before, createdAt: request.session.createdAt!.getTime(), expiresAt: request.session.expiresAt!.getTime() }
    })
    const start = Date.now()
    const first = await app.inject({ method: 'POST', url: '/when' })
    const body = first.json()
    t.same(body.before, { createdAt: null, expiresAt: null }, 'a new session has neither until it is stored')
    t.ok(body.createdAt >= start && body.createdAt <= Date.now())
    t.equal(body.expiresAt, body.createdAt + 600_000, 'idle timeout first')
    let cookies = carry(mode, first)
    let last = body
    for (let i = 0; i < 7; i++) {
      advanceClock(t, 500_000)
      const next = await app.inject({ method: 'POST', url: '/when', cookies })
      cookies = carry(mode, next)
      last = next.json()
    }
    t.equal(last.createdAt, body.createdAt, 'createdAt stays')
    t.equal(last.expiresAt, body.createdAt + 3_600_000, 'near the end, the absolute timeout comes first')
  })

  t.test(`${mode.name}: options({ maxAge }) gives one session its own lifetime, kept across requests`, async (t) => {
    const { options } = await mode.setup(t)
    const app = await buildApp(t, { ...options, maxAge: 600, absoluteTimeout: 30 * 86400 })
    app.post('/remember', async (request) => {
      request.session.set('user', 'ada')
      const before = request.session.options()
      const after = request.session.options({ maxAge: 30 * 86400 })
      return { before, after }
    })
    app.post('/visit', async (request) => {
      request.session.set('n', ((request.session.get('n') as number | undefined) ?? 0) + 1)
      return request.session.options()
    })
    app.get('/read', async (request) => ({ user: request.session.get('user') ?? null }))
    const remembered = await app.inject({ method: 'POST', url: '/remember' })
    t.same(remembered.json(), { before: { maxAge: 600 }, after: { maxAge: 2_592_000 } })
    t.match(setCookies(remembered)[0], /; Max-Age=2592000;/)
    const visit = await app.inject({ method: 'POST', url: '/visit', cookies: carry(mode, remembered) })
    t.same(visit.json(), { maxAge: 2_592_000 }, 'the session keeps its own maxAge')
    t.match(setCookies(visit)[0], /; Max-Age=259\d{4};/)
    advanceClock(t, 7 * 86400 * 1000)
    t.same((await app.inject({ url: '/read', cookies: carry(mode, visit) })).json(), { user: 'ada' }, 'alive long past the plugin maxAge')
  })
}

t.test('options() refuses a maxAge it cannot keep, and regenerate() a keep that is not a list', async (t) => {
  const app = await buildApp(t, { absoluteTimeout: 3600, maxAge: 60 })
  app.get('/bad', async (request) => {
    const codes: string[] = []
    for (const call of [
      () => request.session.options({ maxAge: 3601 }),
      () => request.session.options({ maxAge: 0 }),
      () => request.session.options({ maxAge: 1.5 }),
      () => request.session.options(null as never),
      () => request.session.regenerate('user' as never)
    ]) {
      try {
        await call()
        codes.push('none')
      } catch (error) {
        codes.push((error as { code: string }).code)
      }
    }
    return { codes, same: request.session.options({ maxAge: 60 }), touched: request.session.changed }
  })
  const response = await app.inject('/bad')
  t.same(response.json().codes, Array(5).fill('FST_SESSION_INVALID_ARGUMENT'))
  t.same(response.json().same, { maxAge: 60 }, 'the plugin maxAge given again changes nothing')
  t.same(setCookies(response), [])
})

t.test('assigning a property on request.session throws FST_SESSION_PROPERTY_WRITE pointing at set()', async (t) => {
  const app = await buildApp(t)
  app.get('/assign', async (request) => {
    try {
      (request.session as unknown as Record<string, unknown>)['user'] = 'ada'
      return { code: 'none' }
    } catch (error) {
      return { code: (error as { code: string }).code, message: (error as Error).message }
    }
  })
  app.get('/symbol', async (request) => {
    const key = Symbol('own')
    ;(request.session as unknown as Record<symbol, unknown>)[key] = 1
    return { kept: (request.session as unknown as Record<symbol, unknown>)[key] }
  })
  const response = await app.inject('/assign')
  t.equal(response.json().code, 'FST_SESSION_PROPERTY_WRITE')
  t.match(response.json().message, /"user".*request\.session\.set\(key, value\)/)
  t.same((await app.inject('/symbol')).json(), { kept: 1 }, 'symbol-keyed properties of other code still work')
})

t.test('request.session read before the plugin onRequest hook throws FST_SESSION_NOT_ENABLED', async (t) => {
  const Fastify = (await import('fastify')).default
  const { fastifySessions } = await import('../lib/index.js')
  const { SECRET } = await import('./helpers/app.js')
  const app = Fastify()
  t.teardown(() => app.close())
  app.addHook('onRequest', async (request) => {
    try {
      request.session.get('user')
    } catch (error) {
      (request as unknown as { early: string }).early = (error as { code: string }).code
    }
  })
  await app.register(fastifySessions, { secret: SECRET })
  app.get('/', async (request) => ({ early: (request as unknown as { early: string }).early, isNew: request.session.isNew }))
  t.same((await app.inject('/')).json(), { early: 'FST_SESSION_NOT_ENABLED', isNew: true })
})

t.test('a response that sets a session cookie is private to the browser, unless the handler said otherwise', async (t) => {
  const app = await buildApp(t, { mode: 'archive', archive: new MemoryArchive() })
  app.get('/write', async (request) => { request.session.set('n', Math.random()); return 'ok' })
  app.get('/cached', async (request, reply) => {
    request.session.set('n', Math.random())
    reply.header('cache-control', 'no-store')
    return 'ok'
  })
  app.get('/plain', async () => 'ok')
  t.equal((await app.inject('/write')).headers['cache-control'], 'private, no-cache="set-cookie"')
  t.equal((await app.inject('/cached')).headers['cache-control'], 'no-store')
  t.equal((await app.inject('/plain')).headers['cache-control'], undefined, 'a response without a session cookie is left alone')
})

t.test('data() and JSON keep a "__proto__" key an own key of the copy, never its prototype', async (t) => {
  const app = await buildApp(t)
  app.post('/proto', async (request) => {
    request.session.set('__proto__' as never, { isAdmin: true } as never)
    request.session.set('name', 'bob')
    const data = request.session.data() as Record<string, unknown>
    return { inherited: (data as { isAdmin?: unknown }).isAdmin ?? null, keys: Object.keys(data), json: JSON.stringify(request.session) }
  })
  t.same((await app.inject({ method: 'POST', url: '/proto' })).json(), {
    inherited: null,
    keys: ['__proto__', 'name'],
    json: '{"__proto__":{"isAdmin":true},"name":"bob"}'
  })
})

t.test('cookie mode: regenerate(), save(), then load() reads what was just saved', async (t) => {
  const app = await buildApp(t)
  app.post('/login', async (request) => {
    await request.session.regenerate()
    request.session.set('user', 'alice')
    await request.session.save()
    await request.session.load()
    return { user: request.session.get('user') ?? null }
  })
  app.get('/me', async (request) => ({ user: request.session.get('user') ?? null }))
  const login = await app.inject({ method: 'POST', url: '/login' })
  t.same(login.json(), { user: 'alice' })
  t.same((await app.inject({ url: '/me', cookies: { session: cookieValue(login)! } })).json(), { user: 'alice' })
})

t.test('a hijacked reply that saves its session is private to the browser as well', async (t) => {
  const app = await buildApp(t)
  app.get('/events', async (request, reply) => {
    reply.hijack()
    request.session.set('user', 'ada')
    await request.session.save()
    reply.raw.writeHead(200, { 'content-type': 'text/event-stream' })
    reply.raw.end('data: hi\n\n')
  })
  t.equal((await app.inject('/events')).headers['cache-control'], 'private, no-cache="set-cookie"')
})

t.test('FST_SESSION_NOT_ENABLED names the route, not the query string a client sent', async (t) => {
  const app = await buildApp(t)
  app.get('/off', { config: { session: false } }, async (request) => request.session.get('user'))
  const response = await app.inject('/off?token=SECRET123')
  t.equal(response.json().code, 'FST_SESSION_NOT_ENABLED')
  t.notMatch(response.body, /SECRET123/)
  t.match(response.json().message, /GET \/off/)
})
