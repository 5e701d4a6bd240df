import t from 'tap'
import { MemoryArchive } from '../lib/archives/memory.js'
import { FST_SESSION_ARCHIVE_FULL } from '../lib/errors.js'
import { buildApp, cookieValue, setCookies } from './helpers/app.js'
import { RecordingArchive } from './helpers/archives.js'

async function faultyApp (t: Parameters<typeof buildApp>[0]) {
  const archive = new RecordingArchive(new MemoryArchive())
  const app = await buildApp(t, { mode: 'archive', archive })
  app.post('/visit', async (request) => {
    request.session.set('visits', (request.session.get('visits') as number | undefined ?? 0) + 1)
    return { visits: request.session.get('visits') }
  })
  app.post('/save', async (request) => {
    request.session.set('saved', true)
    try {
      await request.session.save()
      return { saved: true }
    } catch (error) {
      return { saved: false, code: (error as { code: string }).code }
    }
  })
  app.post('/logout', async (request) => { await request.session.destroy(); return 'ok' })
  app.get('/health', { config: { session: false } }, async () => 'ok')
  return { app, archive }
}

t.test('an archive that fails to read answers 503 FST_SESSION_ARCHIVE_UNAVAILABLE and mints no session', async (t) => {
  const { app, archive } = await faultyApp(t)
  const cookie = cookieValue(await app.inject({ method: 'POST', url: '/visit' }), 'session-id')!
  archive.fail('get', new Error('connection refused'))
  const response = await app.inject({ method: 'POST', url: '/visit', cookies: { 'session-id': cookie } })
  t.equal(response.statusCode, 503)
  t.equal(response.json().code, 'FST_SESSION_ARCHIVE_UNAVAILABLE')
  t.same(setCookies(response), [], 'no cookie: the user is not logged out')
  t.equal((await app.inject({ url: '/health' })).statusCode, 200, 'routes without sessions are unaffected')
  archive.heal()
  const after = await app.inject({ method: 'POST', url: '/visit', cookies: { 'session-id': cookie } })
  t.same(after.json(), { visits: 2 }, 'the session is intact once the archive recovers')
})

t.test('an archive that fails to write answers 503 and sends no cookie for state it did not store', async (t) => {
  const { app, archive } = await faultyApp(t)
  archive.fail('set', new Error('disk on fire'))
  const fresh = await app.inject({ method: 'POST', url: '/visit' })
  t.equal(fresh.statusCode, 503)
  t.equal(fresh.json().code, 'FST_SESSION_ARCHIVE_UNAVAILABLE')
  t.same(setCookies(fresh), [])
})

t.test('an archive error with its own FST_SESSION_ARCHIVE_* code keeps it', async (t) => {
  const { app, archive } = await faultyApp(t)
  archive.fail('set', new FST_SESSION_ARCHIVE_FULL())
  const response = await app.inject({ method: 'POST', url: '/visit' })
  t.equal(response.statusCode, 503)
  t.equal(response.json().code, 'FST_SESSION_ARCHIVE_FULL')
})

t.test('an explicit save() that fails throws to the handler, which may answer', async (t) => {
  const { app, archive } = await faultyApp(t)
  archive.fail('set', new Error('timeout'))
  const response = await app.inject({ method: 'POST', url: '/save' })
  t.same(response.json(), { saved: false, code: 'FST_SESSION_ARCHIVE_UNAVAILABLE' })
  t.same(setCookies(response), [], 'and no cookie goes out')
})

t.test('a destroy that cannot reach the archive fails with 503 and leaves the cookie alone', async (t) => {
  const { app, archive } = await faultyApp(t)
  const cookie = cookieValue(await app.inject({ method: 'POST', url: '/visit' }), 'session-id')!
  archive.fail('removeDomain', 'not an Error' as unknown as Error)
  const response = await app.inject({ method: 'POST', url: '/logout', cookies: { 'session-id': cookie } })
  t.equal(response.statusCode, 503)
  t.equal(response.json().code, 'FST_SESSION_ARCHIVE_UNAVAILABLE')
  t.same(setCookies(response), [])
})
