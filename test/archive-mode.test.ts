import t, { type Test } from 'tap'
import { MemoryArchive } from '../lib/archives/memory.js'
import { SESSION_KEY } from '../lib/archive-mode.js'
import { buildApp, cookieValue, OTHER_SECRET, SECRET, setCookies } from './helpers/app.js'
import { RecordingArchive } from './helpers/archives.js'

const SIGNED_ID = /^([A-Za-z0-9_-]{32})\.[A-Za-z0-9_-]{43}$/

async function archiveApp (t: Test, options: Record<string, unknown> = {}) {
  const archive = new RecordingArchive(new MemoryArchive())
  const app = await buildApp(t, { mode: 'archive', archive, ...options })
  app.post('/login', async (request) => {
    await request.session.regenerate()
    request.session.set('user', { id: '42', name: 'Ada' })
    return { id: request.session.id }
  })
  app.get('/', async (request) => ({ id: request.session.id, isNew: request.session.isNew, user: request.session.get('user') ?? null }))
  app.post('/visit', async (request) => {
    const visits = (request.session.get('visits') as number | undefined ?? 0) + 1
    request.session.set('visits', visits)
    return { visits }
  })
  app.post('/logout', async (request) => {
    await request.session.destroy()
    return { ok: true }
  })
  return { app, archive }
}

function idOf (cookie: string | undefined): string {
  const match = SIGNED_ID.exec(cookie ?? '')
  if (match === null) throw new Error(`not a signed id: ${cookie}`)
  return match[1] as string
}

t.test('a login stores the session under a random id and the cookie carries only the signed id', async (t) => {
  const { app, archive } = await archiveApp(t)
  const login = await app.inject({ method: 'POST', url: '/login' })
  const cookie = cookieValue(login, 'session-id')
  const id = idOf(cookie)
  t.equal(login.json().id, id, 'session.id is the id in the cookie')
  t.notOk(setCookies(login).some((c) => c.startsWith('session=')), 'no sealed cookie in archive mode')
  const stored = JSON.parse(await archive.get(id, SESSION_KEY) as string)
  t.same(stored.d, { user: { id: '42', name: 'Ada' } }, 'the archive holds the data')

  const home = await app.inject({ url: '/', cookies: { 'session-id': cookie! } })
  t.same(home.json(), { id, isNew: false, user: { id: '42', name: 'Ada' } })
  t.same(setCookies(home), [], 'a read sends no cookie')
})

t.test('sessions that never change are never stored', async (t) => {
  const { app, archive } = await archiveApp(t)
  for (let i = 0; i < 5; i++) {
    const response = await app.inject({ url: '/' })
    t.equal(response.json().isNew, true)
    t.same(setCookies(response), [])
  }
  t.same(archive.domainsOf('set'), [], 'anonymous traffic writes nothing')
  t.same(archive.domainsOf('get'), [], 'and reads nothing without an id cookie')
})

t.test('an unchanged existing session writes nothing', async (t) => {
  const { app, archive } = await archiveApp(t)
  const cookie = cookieValue(await app.inject({ method: 'POST', url: '/login' }), 'session-id')!
  const writes = archive.domainsOf('set').length
  await app.inject({ url: '/', cookies: { 'session-id': cookie } })
  await app.inject({ url: '/', cookies: { 'session-id': cookie } })
  t.equal(archive.domainsOf('set').length, writes)
})

t.test('ids the plugin did not sign and store never reach the archive and give a fresh session', async (t) => {
  const { app, archive } = await archiveApp(t)
  const cookie = cookieValue(await app.inject({ method: 'POST', url: '/login' }), 'session-id')!
  const id = idOf(cookie)
  const [, signature] = cookie.split('.') as [string, string]
  const forged = [
    id,
    `${id}.`,
    `${id}.${signature.slice(1)}A`,
    `${'A'.repeat(32)}.${signature}`,
    `../../etc/passwd.${signature}`,
    `${id}x.${signature}`,
    `${id}.${signature}.extra`,
    'garbage',
    '%00%ff'
  ]
  const reads = archive.domainsOf('get').length
  for (const value of forged) {
    const response = await app.inject({ url: '/', headers: { cookie: `session-id=${value}` } })
    t.equal(response.statusCode, 200, `200 for ${value}`)
    t.equal(response.json().isNew, true, `fresh session for ${value}`)
    t.not(response.json().id, id, `a new id for ${value}`)
  }
  t.same(archive.domainsOf('get').slice(reads), [], 'no forged id was looked up')

  const unknown = app.inject({ url: '/', cookies: { 'session-id': cookie } })
  await archive.removeDomain(id)
  const response = await unknown
  t.equal(response.json().isNew, true, 'a signed id with nothing stored is a fresh session')
  t.not(response.json().id, id, 'which gets a new id: the server never adopts an id it did not store')
})

t.test('destroy removes the domain and clears the cookie', async (t) => {
  const { app, archive } = await archiveApp(t)
  const cookie = cookieValue(await app.inject({ method: 'POST', url: '/login' }), 'session-id')!
  const logout = await app.inject({ method: 'POST', url: '/logout', cookies: { 'session-id': cookie } })
  t.match(setCookies(logout), [/^session-id=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=\/; HttpOnly; SameSite=Lax$/])
  t.equal(await archive.hasDomain(idOf(cookie)), false)
  const replay = await app.inject({ url: '/', cookies: { 'session-id': cookie } })
  t.equal(replay.json().isNew, true, 'the old cookie no longer opens the session')
})

t.test('regenerate moves the state to a new id and removes the old domain in the same save', async (t) => {
  const { app, archive } = await archiveApp(t)
  const first = cookieValue(await app.inject({ method: 'POST', url: '/visit' }), 'session-id')!
  const login = await app.inject({ method: 'POST', url: '/login', cookies: { 'session-id': first } })
  const second = cookieValue(login, 'session-id')!
  t.not(idOf(second), idOf(first))
  t.equal(await archive.hasDomain(idOf(first)), false, 'the old domain is gone')
  const home = await app.inject({ url: '/', cookies: { 'session-id': second } })
  t.same(home.json().user, { id: '42', name: 'Ada' })
  const visits = await app.inject({ method: 'POST', url: '/visit', cookies: { 'session-id': second } })
  t.equal(visits.json().visits, 1, 'data set before regenerate was not carried over: regenerate() starts empty')
})

t.test('an id signed with an older secret is accepted and signed again with the current one', async (t) => {
  const archive = new MemoryArchive()
  const before = await buildApp(t, { mode: 'archive', archive, secret: OTHER_SECRET })
  before.post('/visit', async (request) => { request.session.set('visits', 1); return 'ok' })
  const old = cookieValue(await before.inject({ method: 'POST', url: '/visit' }), 'session-id')!

  const after = await buildApp(t, { mode: 'archive', archive, secret: [SECRET, OTHER_SECRET] })
  after.get('/', async (request) => ({ visits: request.session.get('visits') }))
  const response = await after.inject({ url: '/', cookies: { 'session-id': old } })
  t.same(response.json(), { visits: 1 })
  const renewed = cookieValue(response, 'session-id')!
  t.equal(idOf(renewed), idOf(old), 'same id')
  t.not(renewed, old, 'new signature')

  const current = await buildApp(t, { mode: 'archive', archive, secret: SECRET })
  current.get('/', async (request) => ({ visits: request.session.get('visits') ?? null }))
  t.same((await current.inject({ url: '/', cookies: { 'session-id': renewed } })).json(), { visits: 1 }, 'the new signature verifies with the new secret alone')
  t.same((await current.inject({ url: '/', cookies: { 'session-id': old } })).json(), { visits: null }, 'the old one does not')
})

t.test('load() reads the stored state again', async (t) => {
  const archive = new MemoryArchive()
  const app = await buildApp(t, { mode: 'archive', archive })
  app.post('/visit', async (request) => { request.session.set('visits', 1); return 'ok' })
  app.get('/reload', async (request) => {
    const id = request.session.id as string
    request.session.set('visits', 99)
    const stored = JSON.parse(await archive.get(id, SESSION_KEY) as string)
    stored.d.visits = 7
    await archive.set(id, SESSION_KEY, JSON.stringify(stored))
    await request.session.load()
    return { visits: request.session.get('visits'), changed: request.session.changed, id: request.session.id === id }
  })
  const cookie = cookieValue(await app.inject({ method: 'POST', url: '/visit' }), 'session-id')!
  const response = await app.inject({ url: '/reload', cookies: { 'session-id': cookie } })
  t.same(response.json(), { visits: 7, changed: false, id: true })
  t.same(setCookies(response), [], 'nothing left to save')
})

t.test('stored sessions past their idle or absolute timeout, or unreadable, are fresh sessions', async (t) => {
  const { app, archive } = await archiveApp(t, { maxAge: 60, absoluteTimeout: 3600 })
  const now = Date.now()
  const cases = {
    idle: JSON.stringify({ c: now - 1000, t: now - 61_000, d: { user: 'idle' } }),
    absolute: JSON.stringify({ c: now - 3_601_000, t: now - 1000, d: { user: 'old' } }),
    'not JSON': '{"c":',
    'wrong shape': JSON.stringify({ c: 'yesterday', t: now, d: [] }),
    'no data': JSON.stringify({ c: now, t: now }),
    null: 'null'
  }
  for (const [name, text] of Object.entries(cases)) {
    const cookie = cookieValue(await app.inject({ method: 'POST', url: '/login' }), 'session-id')!
    await archive.set(idOf(cookie), SESSION_KEY, text)
    const response = await app.inject({ url: '/', cookies: { 'session-id': cookie } })
    t.equal(response.statusCode, 200, name)
    t.same(response.json().user, null, `${name}: no data`)
    t.equal(response.json().isNew, true, `${name}: a fresh session`)
  }
})

t.test('regenerate(keep) carries over only the listed keys', async (t) => {
  const archive = new MemoryArchive()
  const app = await buildApp(t, { mode: 'archive', archive })
  app.post('/fill', async (request) => {
    request.session.set('user', 'ada')
    request.session.set('cart', [1, 2])
    request.session.set('csrf', 'old-token')
    return 'ok'
  })
  app.post('/login', async (request) => {
    await request.session.regenerate(['user', 'cart'])
    return 'ok'
  })
  const first = cookieValue(await app.inject({ method: 'POST', url: '/fill' }), 'session-id')!
  const second = cookieValue(await app.inject({ method: 'POST', url: '/login', cookies: { 'session-id': first } }), 'session-id')!
  t.same(JSON.parse(await archive.get(idOf(second), SESSION_KEY) as string).d, { user: 'ada', cart: [1, 2] })
  t.equal(await archive.hasDomain(idOf(first)), false)
})

t.test('a hijacked reply stores the session with save() before writing', async (t) => {
  const archive = new MemoryArchive()
  const app = await buildApp(t, { mode: 'archive', archive })
  app.get('/events', async (request, reply) => {
    request.session.set('subscribed', true)
    reply.hijack()
    await request.session.save()
    reply.raw.writeHead(200, { 'content-type': 'text/event-stream' })
    reply.raw.end('data: hello\n\n')
  })
  const response = await app.inject({ url: '/events' })
  t.equal(response.body, 'data: hello\n\n')
  const cookie = cookieValue(response, 'session-id')
  t.ok(cookie, 'the id cookie reached the client')
  t.same(JSON.parse(await archive.get(idOf(cookie), SESSION_KEY) as string).d, { subscribed: true }, 'and the state was stored before the first byte')
})

t.test('rolling re-stores and re-issues an existing session on every request; touch() does it once', async (t) => {
  const archive = new RecordingArchive(new MemoryArchive())
  const app = await buildApp(t, { mode: 'archive', archive, rolling: true })
  app.post('/visit', async (request) => { request.session.set('visits', 1); return 'ok' })
  app.get('/read', async () => 'ok')
  const cookie = cookieValue(await app.inject({ method: 'POST', url: '/visit' }), 'session-id')!
  const writes = archive.domainsOf('set').length
  const read = await app.inject({ url: '/read', cookies: { 'session-id': cookie } })
  t.equal(cookieValue(read, 'session-id'), cookie, 'the same id is re-issued')
  t.equal(archive.domainsOf('set').length, writes + 1, 'and its idle timeout restarts in the archive')
  t.same(setCookies(await app.inject({ url: '/read' })), [], 'a request without a session stays without one')

  const still = await buildApp(t, { mode: 'archive', archive })
  still.get('/touch', async (request) => { request.session.touch(); return 'ok' })
  still.get('/read', async () => 'ok')
  t.equal(cookieValue(await still.inject({ url: '/touch', cookies: { 'session-id': cookie } }), 'session-id'), cookie)
  t.same(setCookies(await still.inject({ url: '/read', cookies: { 'session-id': cookie } })), [], 'without rolling, a read re-issues nothing')
})
