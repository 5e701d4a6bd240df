import t from 'tap'
import { MemoryArchive } from '../lib/index.js'
import { buildApp, cookieValue } from './helpers/app.js'

t.test('closing one app leaves the sessions of a MemoryArchive that another app shares', async (t) => {
  const archive = new MemoryArchive()
  const first = await buildApp(t, { archive })
  const second = await buildApp(t, { archive })
  for (const app of [first, second]) {
    app.post('/login', async (request) => { request.session.set('user', 'ada'); return 'ok' })
    app.get('/read', async (request) => ({ user: request.session.get('user') ?? null }))
  }
  const cookie = cookieValue(await first.inject({ method: 'POST', url: '/login' }), 'session-id')!
  await first.close()
  t.same((await second.inject({ url: '/read', cookies: { 'session-id': cookie } })).json(), { user: 'ada' })
})
