import t from 'tap'
import { addSessionRoutes, buildApp } from './helpers/app.js'
import { ironSeal, sessionPayload } from './helpers/iron.js'

t.test('a sealed session whose own fields are malformed is a fresh session', async (t) => {
  const app = await buildApp(t)
  addSessionRoutes(app)
  const good = await ironSeal({ ...sessionPayload({ user: 'ada' }), m: 600, u: 'ada', h: 'h'.repeat(44) })
  t.same((await app.inject({ url: '/read', cookies: { session: good } })).json(), { isNew: false, user: 'ada' }, 'well-formed fields are read')
  for (const fields of [{ m: -1 }, { m: 1.5 }, { m: '600' }, { u: 'ada' }, { u: 7, h: 'x' }, { r: 12 }]) {
    const token = await ironSeal({ ...sessionPayload({ user: 'ada' }), ...fields })
    t.same((await app.inject({ url: '/read', cookies: { session: token } })).json(), { isNew: true, user: null }, JSON.stringify(fields))
  }
})

t.test('load() in cookie mode reads the cookie the request brought again, dropping unsaved changes', async (t) => {
  const app = await buildApp(t)
  addSessionRoutes(app)
  app.post('/reload', async (request) => {
    request.session.set('user', 'changed')
    await request.session.load()
    return { user: request.session.get('user') ?? null, changed: request.session.changed }
  })
  const token = (await app.inject('/write')).cookies[0]!.value
  t.same((await app.inject({ method: 'POST', url: '/reload', cookies: { session: token } })).json(), { user: 'ada', changed: false })
})
