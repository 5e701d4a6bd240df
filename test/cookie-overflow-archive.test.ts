import { existsSync } from 'node:fs'
import path from 'node:path'
import type { FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import { MemoryArchive, type Archive, type FastifySessionsOptions } from '../lib/index.js'
import { buildApp, LogCapture, setCookies } from './helpers/app.js'
import { deferred, RecordingArchive } from './helpers/archives.js'
import { Browser } from './helpers/browser.js'
import { inPlace } from './helpers/temp-dir.js'

const BIG = 5000

interface OverflowApp<A> { app: FastifyInstance, archive: A, logs: LogCapture }

/** A cookie-mode app whose sessions overflow into an archive (a MemoryArchive unless given), with routes that grow, shrink and read them. */
async function overflowApp<A extends Archive = MemoryArchive> (t: Test, options: Partial<FastifySessionsOptions> = {}, given?: A): Promise<OverflowApp<A>> {
  const archive = given ?? new MemoryArchive() as unknown as A
  const logs = new LogCapture()
  const app = await buildApp(t, { mode: 'cookie', archive, ...options }, logs.server)
  app.post('/set', async (request) => {
    const { key, size } = request.query as { key: string, size: string }
    request.session.set(key, 'x'.repeat(Number(size)))
    return { mode: request.session.mode }
  })
  app.post('/delete', async (request) => {
    request.session.delete((request.query as { key: string }).key)
    return { mode: request.session.mode }
  })
  app.get('/read', async (request) => {
    const session = request.session
    const sizes = Object.fromEntries(session.keys().map((key) => [key, (session.get(key) as string).length]))
    return { mode: session.mode, isNew: session.isNew, sizes, createdAt: session.createdAt?.getTime() ?? null, id: session.id ?? null }
  })
  app.post('/destroy', async (request) => {
    await request.session.destroy()
    const { then, size } = request.query as { then?: string, size?: string }
    if (then !== undefined) request.session.set('after', then)
    if (size !== undefined) request.session.set('big', 'x'.repeat(Number(size)))
    return { ok: true }
  })
  app.post('/regenerate', async (request) => {
    const before = request.session.id
    const { keep } = request.query as { keep?: string }
    await request.session.regenerate(keep === undefined ? [] : [keep])
    return { before: before ?? null }
  })
  return { app, archive, logs }
}

function names (cookies: string[]): string[] {
  return cookies.map((line) => `${line.slice(0, line.indexOf('='))}${/; Max-Age=0(;|$)/.test(line) ? ' cleared' : ''}`).sort()
}

t.test('a cookie session that outgrows its cookie moves to the archive in the same response, keeping every key and its creation time', async (t) => {
  const { app, archive, logs } = await overflowApp(t)
  const browser = new Browser()
  await browser.visit(app, { method: 'POST', url: '/set?key=small&size=10' })
  const created = (await browser.visit(app, '/read')).json().createdAt
  t.same(browser.names(), ['session'])

  const grown = await browser.visit(app, { method: 'POST', url: '/set?key=big&size=' + BIG })
  t.equal(grown.statusCode, 200)
  t.same(grown.json(), { mode: 'cookie' }, 'the handler ran in cookie mode, unchanged')
  t.same(names(setCookies(grown)), ['session cleared', 'session.id'], 'the id cookie is set and the sealed cookie cleared in one response')
  t.ok(setCookies(grown).every((line) => line.length <= 4096), 'every cookie sent fits the limit')
  const overflow = logs.withCode('FST_SESSION_COOKIE_OVERFLOW')
  t.equal(overflow.length, 1, 'one warning for the move')
  t.equal(overflow[0]!['level'], 40)
  t.equal(overflow[0]!['overflow'], 'archive')
  t.ok((overflow[0]!['bytes'] as number) > 4096, 'with the size the cookie would have had')
  t.same(browser.names(), ['session.id'])

  const read = (await browser.visit(app, '/read')).json()
  t.same(read.sizes, { small: 10, big: BIG }, 'no key is lost')
  t.equal(read.mode, 'archive', 'request.session.mode says where it lives now')
  t.equal(read.isNew, false)
  t.equal(read.createdAt, created, 'its timeouts still count from its first creation')
  t.equal(archive.usage().sessions, 1, 'one session is stored')

  const changed = await browser.visit(app, { method: 'POST', url: '/set?key=more&size=3' })
  t.same(names(setCookies(changed)), ['session.id'], 'later saves stay in the archive, under the same cookie')
  t.same((await browser.visit(app, '/read')).json().sizes, { small: 10, big: BIG, more: 3 })
})

t.test('a moved session that fits in cookieSize.warn again goes back to its sealed cookie, and its archived copy goes', async (t) => {
  const { app, archive } = await overflowApp(t)
  const browser = new Browser()
  await browser.visit(app, { method: 'POST', url: '/set?key=small&size=10' })
  const created = (await browser.visit(app, '/read')).json().createdAt
  await browser.visit(app, { method: 'POST', url: '/set?key=big&size=' + BIG })
  t.equal(archive.usage().sessions, 1)

  // Below max but above warn: it stays where it is, so a session near the limit does not move at every save.
  const near = await browser.visit(app, { method: 'POST', url: '/set?key=big&size=2550' })
  t.same(names(setCookies(near)), ['session.id'], 'still in the archive between warn and max')
  const back = await browser.visit(app, { method: 'POST', url: '/set?key=big&size=100' })
  t.same(names(setCookies(back)), ['session', 'session.id cleared'], 'the sealed cookie is set and the id cookie cleared in one response')
  t.same(browser.names(), ['session'])
  t.equal(archive.usage().sessions, 0, 'the archived session is removed')
  const read = (await browser.visit(app, '/read')).json()
  t.same(read, { mode: 'cookie', isNew: false, sizes: { small: 10, big: 100 }, createdAt: created, id: null })
})

t.test('a request still carrying the sealed cookie from before the move cannot bring its data back over the moved session', async (t) => {
  const { app } = await overflowApp(t)
  const browser = new Browser()
  await browser.visit(app, { method: 'POST', url: '/set?key=cart&size=10' })
  const inFlight = browser.copy()
  await browser.visit(app, { method: 'POST', url: '/set?key=big&size=' + BIG })
  // The slower request answers after the move, with its own small change sealed in the old cookie.
  const late = await inFlight.send(app, { method: 'POST', url: '/set?key=cart&size=20' })
  t.same(names(setCookies(late)), ['session'])
  browser.take(late)
  t.same(browser.names(), ['session', 'session.id'], 'the browser now holds both cookies')

  const read = await browser.visit(app, '/read')
  t.same(read.json().sizes, { cart: 10, big: BIG }, 'the moved session is the session')
  t.same(names(setCookies(read)), ['session cleared'], 'and the stale sealed cookie is cleared')
  t.same(browser.names(), ['session.id'])
})

t.test('a moved session whose archived copy is gone does not fall back on an older sealed cookie', async (t) => {
  const { app, archive } = await overflowApp(t)
  const browser = new Browser()
  await browser.visit(app, { method: 'POST', url: '/set?key=cart&size=10' })
  const stale = browser.cookies.get('session')!
  await browser.visit(app, { method: 'POST', url: '/set?key=big&size=' + BIG })
  await archive.removeDomain((await browser.visit(app, '/read')).json().id)
  browser.cookies.set('session', stale)

  const read = await browser.visit(app, '/read')
  t.same(read.json(), { mode: 'cookie', isNew: true, sizes: {}, createdAt: null, id: null }, 'a fresh session')
  t.same(names(setCookies(read)), ['session cleared', 'session.id cleared'], 'both cookies are cleared')
  t.same(browser.names(), [])
})

t.test('an id cookie not signed by this server is a fresh session and is cleared, even on a route that never reads it', async (t) => {
  const { app } = await overflowApp(t)
  app.get('/untouched', async () => 'ok')
  for (const url of ['/read', '/untouched']) {
    const response = await app.inject({ url, headers: { cookie: 'session.id=forged.value' } })
    t.equal(response.statusCode, 200)
    t.same(names(setCookies(response)), ['session.id cleared'], url)
  }
})

t.test('a sealed cookie that came back from the archive wins over an id cookie a crossing response set again', async (t) => {
  const { app } = await overflowApp(t)
  const browser = new Browser()
  await browser.visit(app, { method: 'POST', url: '/set?key=big&size=' + BIG })
  const idCookie = browser.cookies.get('session.id')!
  await browser.visit(app, { method: 'POST', url: '/set?key=big&size=100' })
  t.same(browser.names(), ['session'])
  // A response that crossed the move back leaves the old id cookie behind.
  browser.cookies.set('session.id', idCookie)
  const read = await browser.visit(app, '/read')
  t.same(read.json().sizes, { big: 100 }, 'the sealed cookie is the session')
  t.same(names(setCookies(read)), ['session.id cleared'], 'the id cookie is cleared, the sealed one kept')
  t.same(browser.names(), ['session'])

  // Sealed again since, it still names the id it came back from.
  await browser.visit(app, { method: 'POST', url: '/set?key=more&size=2' })
  browser.cookies.set('session.id', idCookie)
  t.same((await browser.visit(app, '/read')).json().sizes, { big: 100, more: 2 })
})

t.test('destroy() on a moved session removes it and clears its cookies', async (t) => {
  const { app, archive } = await overflowApp(t)
  const browser = new Browser()
  await browser.visit(app, { method: 'POST', url: '/set?key=big&size=' + BIG })
  t.equal(archive.usage().sessions, 1)
  const destroyed = await browser.visit(app, { method: 'POST', url: '/destroy' })
  t.same(names(setCookies(destroyed)), ['session.id cleared'])
  t.equal(archive.usage().sessions, 0)
  t.same((await browser.visit(app, '/read')).json().isNew, true)
  // A fresh session after a destroy starts in its cookie again.
  await browser.visit(app, { method: 'POST', url: '/set?key=small&size=5' })
  t.same(browser.names(), ['session'])
})

t.test('regenerate() on a moved session retires its id; a small result goes back to the cookie', async (t) => {
  const { app, archive } = await overflowApp(t)
  const browser = new Browser()
  await browser.visit(app, { method: 'POST', url: '/set?key=big&size=' + BIG })
  await browser.visit(app, { method: 'POST', url: '/set?key=other&size=' + BIG })
  const oldId = (await browser.visit(app, '/read')).json().id
  const regenerated = await browser.visit(app, { method: 'POST', url: '/regenerate?keep=big' })
  t.equal(regenerated.json().before, oldId)
  t.same(names(setCookies(regenerated)), ['session.id'], 'still too large for the cookie: a new id')
  const read = (await browser.visit(app, '/read')).json()
  t.not(read.id, oldId)
  t.same(read.sizes, { big: BIG }, 'only the kept key')
  t.equal(archive.usage().sessions, 1, 'the old id is gone')

  const small = await browser.visit(app, { method: 'POST', url: '/regenerate' })
  t.same(names(setCookies(small)), ['session', 'session.id cleared'])
  t.equal(archive.usage().sessions, 0)
})

t.test('a save that loses to a destroy of the moved session meanwhile sends no cookie, also when it would go back to the cookie', async (t) => {
  const { app, archive } = await overflowApp(t)
  const gate = deferred()
  app.post('/slow-shrink', async (request) => {
    request.session.set('big', 'x')
    await gate.promise
    return 'ok'
  })
  const browser = new Browser()
  await browser.visit(app, { method: 'POST', url: '/set?key=big&size=' + BIG })
  const slow = browser.send(app, { method: 'POST', url: '/slow-shrink' })
  await new Promise((resolve) => setTimeout(resolve, 20))
  await browser.visit(app, { method: 'POST', url: '/destroy' })
  gate.resolve()
  const late = await slow
  t.equal(late.statusCode, 200)
  t.same(setCookies(late), [], 'the logout wins: nothing is sent')
  t.equal(archive.usage().sessions, 0)
})

t.test('two requests changing different keys of a moved session both keep their change', async (t) => {
  const { app } = await overflowApp(t)
  const browser = new Browser()
  await browser.visit(app, { method: 'POST', url: '/set?key=big&size=' + BIG })
  const first = browser.copy()
  await Promise.all([
    first.visit(app, { method: 'POST', url: '/set?key=a&size=1' }),
    browser.visit(app, { method: 'POST', url: '/set?key=b&size=2' })
  ])
  t.same((await browser.visit(app, '/read')).json().sizes, { big: BIG, a: 1, b: 2 })
})

t.test('bindUser() and revocation work on a moved session, in revocable cookie mode', async (t) => {
  const { app, archive } = await overflowApp(t, { revocable: true })
  app.post('/login', async (request) => {
    request.session.bindUser('ada')
    return { handle: request.session.handle }
  })
  const browser = new Browser()
  const { handle } = (await browser.visit(app, { method: 'POST', url: '/login' })).json()
  const beforeMove = browser.copy()
  await browser.visit(app, { method: 'POST', url: '/set?key=big&size=' + BIG })
  t.same(browser.names(), ['session.id'])
  const listed = await app.sessions.list('ada')
  t.same(listed.map((info) => [info.handle, info.mode]), [[handle, 'archive']], 'the user index follows the move')

  // The sealed cookie from before the move names a record the move retired.
  t.equal((await beforeMove.visit(app, '/read')).json().isNew, true, 'the pre-move sealed cookie is refused')

  // Shrunk, a session bound to a user stays in the archive.
  const shrunk = await browser.visit(app, { method: 'POST', url: '/set?key=big&size=5' })
  t.same(names(setCookies(shrunk)), ['session.id'])

  t.equal(await app.sessions.revokeUser('ada'), 1)
  t.equal((await browser.visit(app, '/read')).json().isNew, true, 'revoked: a fresh session')
  t.same(await app.sessions.list('ada'), [])
  t.same(archive.usage().sessions, 0)
})

t.test('a moved session too large for maxSize is refused, and nothing is stored', async (t) => {
  for (const revocable of [false, true]) {
    const { app, archive } = await overflowApp(t, { maxSize: 6000, revocable })
    const browser = new Browser()
    await browser.visit(app, { method: 'POST', url: '/set?key=small&size=3' })
    const response = await browser.visit(app, { method: 'POST', url: '/set?key=big&size=7000' })
    t.equal(response.statusCode, 500, `revocable: ${revocable}`)
    t.equal(response.json().code, 'FST_SESSION_TOO_LARGE')
    t.same(setCookies(response), [])
    t.equal(archive.usage().sessions, revocable ? 1 : 0, 'nothing but a revocable session\'s record')
  }
})

t.test("overflow: 'archive' without an archive moves sessions to the default file archive", async (t) => {
  const place = await inPlace(t)
  const app = await buildApp(t, { cookieSize: { overflow: 'archive' } })
  app.post('/big', async (request) => { request.session.set('big', 'x'.repeat(BIG)); return 'ok' })
  const response = await app.inject({ method: 'POST', url: '/big' })
  const id = response.cookies.find((cookie) => cookie.name === 'session.id')!.value.split('.')[0]!
  t.ok(existsSync(path.join(place, '.gen', 'sessions', id, 'session.json')))
})

t.test('destroy() then set() on a moved session in one request starts a fresh session in its cookie', async (t) => {
  const { app, archive } = await overflowApp(t)
  const browser = new Browser()
  await browser.visit(app, { method: 'POST', url: '/set?key=big&size=' + BIG })
  const response = await browser.visit(app, { method: 'POST', url: '/destroy?then=fresh' })
  t.same(names(setCookies(response)), ['session', 'session.id cleared'])
  t.equal(archive.usage().sessions, 0)
  const read = (await browser.visit(app, '/read')).json()
  t.same([read.mode, read.sizes], ['cookie', { after: 5 }])
  t.type(read.createdAt, 'number', 'with a creation time of its own')

  await browser.visit(app, { method: 'POST', url: '/set?key=big&size=' + BIG })
  for (const size of [BIG, 2600]) {
    const large = await browser.visit(app, { method: 'POST', url: `/destroy?size=${size}` })
    t.same(names(setCookies(large)), ['session.id'], `a fresh session of ${size} bytes, too large for a cookie under cookieSize.warn, stays in the archive, under a new id`)
    t.equal(archive.usage().sessions, 1)
    t.same((await browser.visit(app, '/read')).json().sizes, { big: size })
  }
})

t.test('a revocable session moves only while its record lives: revoked meanwhile, the move stores nothing and sends nothing', async (t) => {
  const { app, archive } = await overflowApp(t, { revocable: true })
  const gate = deferred()
  app.post('/slow-grow', async (request) => {
    request.session.get('small')
    await gate.promise
    request.session.set('big', 'x'.repeat(BIG))
    return 'ok'
  })
  app.post('/login', async (request) => {
    request.session.bindUser('ada')
    return 'ok'
  })
  const browser = new Browser()
  await browser.visit(app, { method: 'POST', url: '/login' })
  const slow = browser.send(app, { method: 'POST', url: '/slow-grow' })
  await new Promise((resolve) => setTimeout(resolve, 20))
  t.equal(await app.sessions.revokeUser('ada'), 1)
  gate.resolve()
  const late = await slow
  t.equal(late.statusCode, 200)
  t.same(setCookies(late), [], 'the revocation wins')
  t.equal(archive.usage().sessions, 0, 'nothing was moved')
})

t.test('a regenerated revocable session that outgrows its cookie moves, and the record it replaced is retired', async (t) => {
  const { app } = await overflowApp(t, { revocable: true })
  app.post('/regenerate-big', async (request) => {
    await request.session.regenerate()
    request.session.set('big', 'x'.repeat(BIG))
    return 'ok'
  })
  const browser = new Browser()
  await browser.visit(app, { method: 'POST', url: '/set?key=small&size=3' })
  const before = browser.copy()
  const moved = await browser.visit(app, { method: 'POST', url: '/regenerate-big' })
  t.same(names(setCookies(moved)), ['session cleared', 'session.id'])
  t.same((await browser.visit(app, '/read')).json().sizes, { big: BIG })
  t.equal((await before.visit(app, '/read')).json().isNew, true, 'the replaced token is refused')
  // A new revocable session can move at its first save, with no record to retire.
  const fresh = new Browser()
  t.same(names(setCookies(await fresh.visit(app, { method: 'POST', url: '/set?key=big&size=' + BIG }))), ['session.id'])
})

t.test('a move the archive has no room for stores nothing and sends nothing: the browser keeps its sealed cookie', async (t) => {
  for (const revocable of [false, true]) {
    // A revocable session's record takes a place of its own, established once read back.
    const archive = new MemoryArchive({ maxSessions: revocable ? 3 : 2, maxNewSessions: 1 })
    const { app } = await overflowApp(t, { revocable }, archive)
    const first = new Browser()
    await first.visit(app, { method: 'POST', url: '/set?key=small&size=3' })
    await first.visit(app, '/read')
    // Established sessions fill the archive: the move cannot evict them.
    for (const id of ['a'.repeat(32), 'b'.repeat(32)]) {
      await archive.set(id, 'session', '{}', 60_000)
      await archive.get(id, 'session')
    }
    const held = first.cookies.get('session')
    const response = await first.visit(app, { method: 'POST', url: '/set?key=big&size=' + BIG })
    t.equal(response.statusCode, 200, `revocable: ${revocable}`)
    t.same(setCookies(response), [], 'nothing is sent')
    t.equal(first.cookies.get('session'), held, 'the browser keeps its sealed cookie')
  }
})

t.test('an archive failure during a move or a move back is a 503, and sends no cookie', async (t) => {
  for (const revocable of [false, true]) {
    const archive = new RecordingArchive(new MemoryArchive())
    const { app } = await overflowApp(t, { revocable }, archive)
    const browser = new Browser()
    await browser.visit(app, { method: 'POST', url: '/set?key=small&size=3' })
    // Read once: a revocable session's record is then trusted for a while, so the failure meets the move itself.
    await browser.visit(app, '/read')
    archive.fail('get', Object.assign(new Error('down'), { code: 'ECONNREFUSED' }))
    archive.fail('set', Object.assign(new Error('down'), { code: 'ECONNREFUSED' }))
    const failed = await browser.visit(app, { method: 'POST', url: '/set?key=big&size=' + BIG })
    t.equal(failed.statusCode, 503, `move, revocable: ${revocable}`)
    t.same(setCookies(failed), [])
    archive.heal()
    await browser.visit(app, { method: 'POST', url: '/set?key=big&size=' + BIG })
    t.same(browser.names(), ['session.id'])
    if (revocable) continue
    archive.fail('removeDomain', Object.assign(new Error('down'), { code: 'ECONNREFUSED' }))
    const back = await browser.visit(app, { method: 'POST', url: '/set?key=big&size=3' })
    t.equal(back.statusCode, 503, 'move back')
    t.same(setCookies(back), [])
  }
})

t.test('a session just over the limit, sealed to find out, moves too, with the exact size of the cookie it would have had', async (t) => {
  const { app, logs } = await overflowApp(t)
  const response = await app.inject({ method: 'POST', url: '/set?key=big&size=2950' })
  t.same(names(setCookies(response)), ['session.id'])
  const bytes = logs.withCode('FST_SESSION_COOKIE_OVERFLOW')[0]!['bytes'] as number
  t.ok(bytes > 4096 && bytes < 4096 + 400, `${bytes} bytes`)
  t.ok(Math.ceil(2950 * 4 / 3) < 4096, 'a size whose JSON alone would fit')
})
