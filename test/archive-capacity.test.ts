import t from 'tap'
import { MemoryArchive } from '../lib/index.js'
import { buildApp, cookieValue, LogCapture, setCookies } from './helpers/app.js'

for (const mode of ['archive', 'cookie'] as const) {
  t.test(`${mode === 'archive' ? 'archive mode' : 'revocable cookie mode'}: a full archive serves new visitors without storing them, and established users notice nothing`, async (t) => {
    const logs = new LogCapture()
    const archive = new MemoryArchive({ maxSessions: 3, maxNewSessions: 1 })
    const app = await buildApp(t, { mode, revocable: mode === 'cookie', archive }, logs.server)
    const name = mode === 'archive' ? 'session-id' : 'session'
    app.post('/visit', async (request) => {
      request.session.set('visits', ((request.session.get('visits') as number | undefined) ?? 0) + 1)
      return { visits: request.session.get('visits') }
    })
    const established: string[] = []
    for (let i = 0; i < 3; i++) {
      const first = await app.inject({ method: 'POST', url: '/visit' })
      const again = await app.inject({ method: 'POST', url: '/visit', cookies: { [name]: cookieValue(first, name)! } })
      t.same(again.json(), { visits: 2 }, 'a returning visitor is established')
      established.push(cookieValue(again, name)!)
    }
    const stranger = await app.inject({ method: 'POST', url: '/visit' })
    t.equal(stranger.statusCode, 200, 'a new visitor still gets the answer')
    t.same(stranger.json(), { visits: 1 })
    t.same(setCookies(stranger), [], 'with no cookie for a session that was not stored')
    t.equal(logs.withCode('FST_SESSION_ARCHIVE_AT_CAPACITY').length, 1)
    for (const cookie of established) {
      const visit = await app.inject({ method: 'POST', url: '/visit', cookies: { [name]: cookie } })
      t.same(visit.json(), { visits: 3 }, 'every established user keeps the session')
    }
  })
}
