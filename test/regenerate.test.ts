import t, { type Test } from 'tap'
import { buildApp, cookieValue, setCookies } from './helpers/app.js'
import { ironSeal, ironUnseal, sessionPayload } from './helpers/iron.js'

const DATA = { user: 'ada', cart: ['book'], theme: 'dark' }

async function regenerateApp (t: Test): Promise<Awaited<ReturnType<typeof buildApp>>> {
  const app = await buildApp(t)
  app.get('/all', async (request) => {
    await request.session.regenerate()
    return { isNew: request.session.isNew, changed: request.session.changed }
  })
  app.get('/some', async (request) => {
    await request.session.regenerate(['user', 'theme', 'missing'])
    return { cart: request.session.get('cart') ?? null, user: request.session.get('user') }
  })
  return app
}

t.test('regenerate() starts an empty session with a new creation time, and sends it', async (t) => {
  const app = await regenerateApp(t)
  const created = Date.now() - 3_600_000
  const token = await ironSeal(sessionPayload(DATA, { created }))
  const response = await app.inject({ url: '/all', cookies: { session: token } })
  t.same(response.json(), { isNew: false, changed: true })
  t.equal(setCookies(response).length, 1, 'sent though no value changed')
  const payload = await ironUnseal(cookieValue(response)!) as { c: number, d: unknown }
  t.same(payload.d, {}, 'nothing planted before it survives')
  t.ok(payload.c > created, 'the creation time is new, so the absolute timeout starts over')
})

t.test('regenerate(keys) carries over only the listed keys', async (t) => {
  const app = await regenerateApp(t)
  const token = await ironSeal(sessionPayload(DATA))
  const response = await app.inject({ url: '/some', cookies: { session: token } })
  t.same(response.json(), { cart: null, user: 'ada' }, 'the dropped key is gone within the request')
  t.same((await ironUnseal(cookieValue(response)!) as { d: unknown }).d, { user: 'ada', theme: 'dark' })
})

t.test('regenerate() on a new session sends an empty one', async (t) => {
  const app = await regenerateApp(t)
  const response = await app.inject('/all')
  t.same(response.json(), { isNew: true, changed: true })
  t.same((await ironUnseal(cookieValue(response)!) as { d: unknown }).d, {})
})
