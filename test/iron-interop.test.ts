import t from 'tap'
import { addSessionRoutes, buildApp, cookieValue, OTHER_SECRET, SECRET } from './helpers/app.js'
import { ironSeal, ironUnseal, sessionPayload } from './helpers/iron.js'

t.test('a token the plugin writes unseals with iron-webcrypto and the same secret', async (t) => {
  const app = await buildApp(t)
  app.get('/login', async (request) => {
    request.session.set('user', { id: '42', name: 'Ada Lovelace', roles: ['admin'], note: 'élan ✓' })
    request.session.set('visits', 3)
    return { ok: true }
  })
  const before = Date.now()
  const token = cookieValue(await app.inject('/login'))!
  const after = Date.now()
  const payload = await ironUnseal(token) as { c: number, t: number, d: unknown }
  t.same(payload.d, { user: { id: '42', name: 'Ada Lovelace', roles: ['admin'], note: 'élan ✓' }, visits: 3 })
  t.ok(payload.c >= before && payload.c <= after, 'c is the creation time in ms')
  t.equal(payload.t, payload.c, 'a new session is issued when it is created')
  await t.rejects(ironUnseal(token, OTHER_SECRET), 'another secret does not unseal it')
})

t.test('a token iron-webcrypto seals from the same payload shape is accepted as a session', async (t) => {
  const app = await buildApp(t)
  addSessionRoutes(app)
  app.get('/all', async (request) => ({ user: request.session.get('user'), visits: request.session.get('visits') }))
  const token = await ironSeal(sessionPayload({ user: { id: '7', name: 'Grace' }, visits: 12 }))
  const response = await app.inject({ url: '/all', cookies: { session: token } })
  t.equal(response.statusCode, 200)
  t.same(response.json(), { user: { id: '7', name: 'Grace' }, visits: 12 })
})

t.test('iron-webcrypto tokens with an expiration in the future or a password id are accepted', async (t) => {
  const app = await buildApp(t)
  addSessionRoutes(app)
  const withTtl = await ironSeal(sessionPayload({ user: 'ttl' }), SECRET, { ttl: 60_000 })
  t.match(withTtl, /\*\d{13}\*[^*]+\*[^*]+$/, 'the token carries an expiration')
  t.same((await app.inject({ url: '/read', cookies: { session: withTtl } })).json(), { isNew: false, user: 'ttl' })

  const token = await ironSeal(sessionPayload({ user: 'id' }), SECRET)
  const { seal, defaults } = await import('iron-webcrypto')
  const withId = await seal(sessionPayload({ user: 'id' }), { id: 'v2', secret: SECRET }, defaults)
  t.match(withId, /^Fe26\.2\*v2\*/)
  t.not(withId, token)
  t.same((await app.inject({ url: '/read', cookies: { session: withId } })).json(), { isNew: false, user: 'id' })
})

t.test('a session round-trips: iron-webcrypto seals, the plugin changes it, iron-webcrypto reads the change', async (t) => {
  const app = await buildApp(t)
  app.get('/visit', async (request) => {
    request.session.set('visits', (request.session.get('visits') as number) + 1)
    return { ok: true }
  })
  const created = Date.now() - 60_000
  const token = await ironSeal(sessionPayload({ visits: 1 }, { created }))
  const next = cookieValue(await app.inject({ url: '/visit', cookies: { session: token } }))!
  const payload = await ironUnseal(next) as { c: number, t: number, d: unknown }
  t.same(payload.d, { visits: 2 })
  t.equal(payload.c, created, 'the creation time is carried over')
  t.ok(payload.t > created, 'the issue time is now')
})
