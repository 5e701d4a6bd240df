import fp from 'fastify-plugin'
import t from 'tap'
import { MemoryArchive } from '../lib/index.js'
import { buildApp, cookieValue, setCookies } from './helpers/app.js'
import { RecordingArchive } from './helpers/archives.js'

t.test('archive mode: a stored session is parsed only when the route uses it, and routes of other plugins can go without any archive read', async (t) => {
  const archive = new RecordingArchive(new MemoryArchive())
  const app = await buildApp(t, { mode: 'archive', archive })
  // Routes another plugin adds (static files, health checks): turned off by prefix with an onRoute hook.
  app.addHook('onRoute', (route) => {
    if (route.url.startsWith('/assets/')) route.config = { ...route.config, session: false }
  })
  await app.register(fp(async (plugin) => {
    plugin.get('/assets/app.css', async () => 'body{}')
  }))
  app.post('/login', async (request) => { request.session.set('user', 'ada'); return 'ok' })
  app.get('/untouched', async () => 'ok')
  const cookie = cookieValue(await app.inject({ method: 'POST', url: '/login' }), 'session-id')!
  const reads = (): number => archive.calls.filter((call) => call.method === 'get').length
  const before = reads()
  const asset = await app.inject({ url: '/assets/app.css', cookies: { 'session-id': cookie } })
  t.equal(asset.statusCode, 200)
  t.equal(reads(), before, 'no archive read for a route without a session')
  t.same(setCookies(asset), [])
  const untouched = await app.inject({ url: '/untouched', cookies: { 'session-id': cookie } })
  t.equal(untouched.statusCode, 200)
  t.equal(reads(), before + 1, 'a route that has a session fetches it once, and parses it only on use')
  t.same(setCookies(untouched), [])
})
