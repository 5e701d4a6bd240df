import fastifyCookie from '@fastify/cookie'
import Fastify, { type FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import { fastifySessions, type FastifySessionsOptions } from '../lib/index.js'
import { buildApp, LogCapture, SECRET, setCookies } from './helpers/app.js'
import { Browser } from './helpers/browser.js'

/** A cookie-mode app whose sessions are split over numbered cookies, with routes that grow, shrink and read them. */
async function chunkApp (t: Test, cookieSize: NonNullable<FastifySessionsOptions['cookieSize']> = {}, app?: FastifyInstance): Promise<{ app: FastifyInstance, logs: LogCapture }> {
  const logs = new LogCapture()
  const options = { cookieSize: { overflow: 'chunk' as const, ...cookieSize } }
  if (app === undefined) {
    app = await buildApp(t, options, logs.server)
  } else {
    await app.register(fastifySessions, { secret: SECRET, ...options })
  }
  app.post('/set', async (request) => {
    const { key, size } = request.query as { key: string, size: string }
    // Random-looking text, so that the token's size follows the value's.
    request.session.set(key, Buffer.alloc(Number(size), key).toString('latin1'))
    return 'ok'
  })
  app.get('/read', async (request) => {
    const session = request.session
    return { isNew: session.isNew, sizes: Object.fromEntries(session.keys().map((key) => [key, (session.get(key) as string).length])) }
  })
  app.post('/destroy', async (request) => {
    await request.session.destroy()
    return 'ok'
  })
  return { app, logs }
}

function names (cookies: string[]): string[] {
  return cookies.map((line) => `${line.slice(0, line.indexOf('='))}${/; Max-Age=0(;|$)/.test(line) ? ' cleared' : ''}`).sort()
}

/** The bytes the chunk cookies add to the `Cookie` header the browser sends back. */
function cookieHeaderBytes (browser: Browser): number {
  return Buffer.byteLength(browser.header() ?? '')
}

t.test('a session too large for one cookie is split over <name>.0, <name>.1, ..., each within cookieSize.max, and read back whole', async (t) => {
  const { app, logs } = await chunkApp(t)
  const browser = new Browser()
  await browser.visit(app, { method: 'POST', url: '/set?key=a&size=10' })
  t.same(browser.names(), ['session'])

  const grown = await browser.visit(app, { method: 'POST', url: '/set?key=b&size=5000' })
  t.equal(grown.statusCode, 200)
  t.same(names(setCookies(grown)), ['session cleared', 'session.0', 'session.1'], 'two chunks, and the single cookie cleared')
  for (const line of setCookies(grown)) t.ok(Buffer.byteLength(line) <= 4096, `${line.slice(0, 10)}: ${Buffer.byteLength(line)} bytes`)
  t.ok(cookieHeaderBytes(browser) <= 8192)
  const warning = logs.withCode('FST_SESSION_COOKIE_OVERFLOW')
  t.equal(warning.length, 1)
  t.equal(warning[0]!['overflow'], 'chunk')
  t.ok((warning[0]!['bytes'] as number) > 4096)

  t.same((await browser.visit(app, '/read')).json(), { isNew: false, sizes: { a: 10, b: 5000 } })
  await browser.visit(app, { method: 'POST', url: '/set?key=c&size=1' })
  t.equal(logs.withCode('FST_SESSION_COOKIE_OVERFLOW').length, 2, 'each save that splits warns')
})

t.test('a session that shrinks goes back to one cookie, and every chunk is cleared; a smaller split clears the stale chunks', async (t) => {
  const { app } = await chunkApp(t, { maxTotal: 12288 })
  const browser = new Browser()
  await browser.visit(app, { method: 'POST', url: '/set?key=b&size=7500' })
  t.same(browser.names(), ['session.0', 'session.1', 'session.2'])
  const fewer = await browser.visit(app, { method: 'POST', url: '/set?key=b&size=5000' })
  t.same(names(setCookies(fewer)), ['session.0', 'session.1', 'session.2 cleared'])
  t.same((await browser.visit(app, '/read')).json().sizes, { b: 5000 })

  const single = await browser.visit(app, { method: 'POST', url: '/set?key=b&size=10' })
  t.same(names(setCookies(single)), ['session', 'session.0 cleared', 'session.1 cleared'])
  t.same(browser.names(), ['session'])
  t.same((await browser.visit(app, '/read')).json().sizes, { b: 10 })
})

t.test('the cookie header that brings the chunks back is accounted exactly: past cookieSize.maxTotal the save fails and nothing is sent', async (t) => {
  const { app } = await chunkApp(t, { maxTotal: 8192 })
  const browser = new Browser()
  // Find the largest value whose chunks fit, then one more byte fails.
  let size = 5000
  while ((await browser.send(app, { method: 'POST', url: `/set?key=b&size=${size + 100}` })).statusCode === 200) size += 100
  const fits = await browser.send(app, { method: 'POST', url: `/set?key=b&size=${size}` })
  const fitted = new Browser()
  fitted.take(fits)
  t.ok(cookieHeaderBytes(fitted) <= 8192, `${cookieHeaderBytes(fitted)} bytes of Cookie header`)
  t.ok(cookieHeaderBytes(fitted) > 8192 - 300, 'close to the limit')
  const over = await browser.send(app, { method: 'POST', url: `/set?key=b&size=${size + 100}` })
  t.equal(over.statusCode, 500)
  t.equal(over.json().code, 'FST_SESSION_COOKIE_TOO_LARGE')
  t.match(over.json().message, 'over the limit of 8192')
  t.same(setCookies(over), [], 'no chunk leaves')
})

t.test('a missing, extra, reordered, repeated or empty chunk is a fresh session, never a 5xx, and the chunks are cleared', async (t) => {
  const { app } = await chunkApp(t, { maxTotal: 12288 })
  const browser = new Browser()
  await browser.visit(app, { method: 'POST', url: '/set?key=b&size=7500' })
  const [c0, c1, c2] = ['session.0', 'session.1', 'session.2'].map((name) => browser.cookies.get(name)!)
  const cases: Record<string, string> = {
    'a missing middle chunk': `session.0=${c0}; session.2=${c2}`,
    'a missing last chunk': `session.0=${c0}; session.1=${c1}`,
    'a missing first chunk': `session.1=${c1}; session.2=${c2}`,
    'an extra chunk': `session.0=${c0}; session.1=${c1}; session.2=${c2}; session.3=${c2}`,
    'two chunks swapped': `session.0=${c0}; session.1=${c2}; session.2=${c1}`,
    'an empty chunk': `session.0=${c0}; session.1=; session.2=${c2}`,
    'a chunk index far out': `session.0=${c0}; session.1=${c1}; session.999=${c2}`,
    'more chunks than a session is ever split over': Array.from({ length: 17 }, (_, index) => `session.${index}=x`).join('; '),
    'garbage in every chunk': 'session.0=Fe26.2**; session.1=%%%; session.2=***'
  }
  for (const [label, cookie] of Object.entries(cases)) {
    const response = await app.inject({ url: '/read', headers: { cookie } })
    t.equal(response.statusCode, 200, label)
    t.same(response.json(), { isNew: true, sizes: {} }, `${label}: a fresh session`)
    t.ok(names(setCookies(response)).every((name) => name.endsWith(' cleared')), `${label}: only clears`)
    t.ok(names(setCookies(response)).includes('session.0 cleared') || !cookie.includes('session.0='), `${label}: the chunks are cleared`)
  }
  const repeated = await app.inject({ url: '/read', headers: { cookie: `session.0=${c0}; session.1=${c1}; session.1=${c2}; session.2=${c2}` } })
  t.same(repeated.json(), { isNew: false, sizes: { b: 7500 } }, 'a repeated name: the first one counts, as for any cookie')
  t.same((await app.inject({ url: '/read', headers: { cookie: `session.0=${c0}; session.1=${c1}; session.2=${c2}` } })).json().isNew, false, 'and the whole set still reads')
})

t.test('when a single cookie and chunks both come, from responses that crossed, the later one is the session and the other is cleared', async (t) => {
  const { app } = await chunkApp(t)
  const browser = new Browser()
  await browser.visit(app, { method: 'POST', url: '/set?key=a&size=10' })
  const slow = browser.copy()
  await browser.visit(app, { method: 'POST', url: '/set?key=b&size=5000' })
  await new Promise((resolve) => setTimeout(resolve, 5))
  // A request sent before the split answers after it, with the single cookie.
  browser.take(await slow.send(app, { method: 'POST', url: '/set?key=c&size=1' }))
  t.same(browser.names(), ['session', 'session.0', 'session.1'])
  const read = await browser.visit(app, '/read')
  t.same(read.json().sizes, { a: 10, c: 1 }, 'the later save is the session')
  t.same(names(setCookies(read)), ['session', 'session.0 cleared', 'session.1 cleared'], 'sealed again, with the chunks cleared')
  t.same(browser.names(), ['session'])

  // And the other way round: the chunks are the later ones.
  const earlier = new Browser()
  await earlier.visit(app, { method: 'POST', url: '/set?key=a&size=10' })
  const single = earlier.cookies.get('session')!
  await new Promise((resolve) => setTimeout(resolve, 5))
  await earlier.visit(app, { method: 'POST', url: '/set?key=b&size=5000' })
  earlier.cookies.set('session', single)
  const chunked = await earlier.visit(app, '/read')
  t.same(chunked.json().sizes, { a: 10, b: 5000 })
  t.same(names(setCookies(chunked)), ['session cleared', 'session.0', 'session.1'])
})

t.test('destroy() clears every chunk the request brought, and only what it brought', async (t) => {
  const { app } = await chunkApp(t)
  const browser = new Browser()
  await browser.visit(app, { method: 'POST', url: '/set?key=b&size=5000' })
  const destroyed = await browser.visit(app, { method: 'POST', url: '/destroy' })
  t.same(names(setCookies(destroyed)), ['session.0 cleared', 'session.1 cleared'])
  t.same(browser.names(), [])
})

t.test('chunks are read the same way when @fastify/cookie parsed the cookies first', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyCookie)
  await chunkApp(t, {}, app)
  const browser = new Browser()
  await browser.visit(app, { method: 'POST', url: '/set?key=b&size=5000' })
  t.same(browser.names(), ['session.0', 'session.1'])
  t.same((await browser.visit(app, '/read')).json(), { isNew: false, sizes: { b: 5000 } })
  browser.cookies.set('session.x', '1')
  browser.cookies.set('other', '2')
  t.same((await browser.send(app, '/read')).json(), { isNew: false, sizes: { b: 5000 } }, 'with cookies the chunks do not own')
  const broken = await app.inject({ url: '/read', headers: { cookie: `session.1=${browser.cookies.get('session.1')!}` } })
  t.same(broken.json(), { isNew: true, sizes: {} })
})

t.test('a chunked session survives a restart with the same secret, and a tampered chunk is refused', async (t) => {
  const { app } = await chunkApp(t)
  const browser = new Browser()
  await browser.visit(app, { method: 'POST', url: '/set?key=b&size=5000' })
  const { app: restarted } = await chunkApp(t)
  t.same((await browser.send(restarted, '/read')).json().sizes, { b: 5000 })
  const c1 = browser.cookies.get('session.1')!
  browser.cookies.set('session.1', `${c1.slice(0, 100)}${c1[100] === 'A' ? 'B' : 'A'}${c1.slice(101)}`)
  t.same((await browser.send(restarted, '/read')).json().isNew, true)
})

t.test('a cookieSize.max too small for the attributes, or a token needing more than 16 chunks, fails the save with nothing sent', async (t) => {
  const { app: tiny } = await chunkApp(t, { max: 60, warn: 60, maxTotal: 8192 })
  const tooSmall = await tiny.inject({ method: 'POST', url: '/set?key=a&size=1' })
  t.equal(tooSmall.statusCode, 500)
  t.equal(tooSmall.json().code, 'FST_SESSION_COOKIE_TOO_LARGE')
  t.same(setCookies(tooSmall), [])
  const { app: narrow } = await chunkApp(t, { max: 400, warn: 400, maxTotal: 12288 })
  t.equal((await narrow.inject({ method: 'POST', url: '/set?key=a&size=1500' })).statusCode, 200, 'a few narrow chunks')
  const many = await narrow.inject({ method: 'POST', url: '/set?key=a&size=6000' })
  t.equal(many.json().code, 'FST_SESSION_COOKIE_TOO_LARGE')
  t.same(setCookies(many), [])
})

t.test('an empty single cookie beside chunks, and cookie pairs the chunks do not own, change nothing', async (t) => {
  const { app } = await chunkApp(t)
  const browser = new Browser()
  await browser.visit(app, { method: 'POST', url: '/set?key=b&size=5000' })
  const chunks = `session.0=${browser.cookies.get('session.0')!}; session.1=${browser.cookies.get('session.1')!}`
  for (const extra of ['session=', 'session.01=x', 'session.x=1', 'session.1000=x', 'other=1', 'flag']) {
    const response = await app.inject({ url: '/read', headers: { cookie: `${extra}; ${chunks}` } })
    t.same(response.json(), { isNew: false, sizes: { b: 5000 } }, extra)
  }
})

t.test('a rejected chunked cookie is cleared once, even when the handler saved nothing', async (t) => {
  const { app } = await chunkApp(t)
  app.get('/destroy-twice', async (request) => {
    request.session.get('b')
    return 'ok'
  })
  const response = await app.inject({ url: '/destroy-twice', headers: { cookie: 'session.0=a; session.1=b' } })
  t.same(names(setCookies(response)), ['session.0 cleared', 'session.1 cleared'])
})

t.test('a new session split at its first save clears nothing, and a request crammed with stray chunks gets a bounded answer', async (t) => {
  const { app } = await chunkApp(t)
  const fresh = await app.inject({ method: 'POST', url: '/set?key=b&size=5000' })
  t.same(names(setCookies(fresh)), ['session.0', 'session.1'], 'no clear of a cookie the request never brought')
  const strays = Array.from({ length: 300 }, (_, index) => `session.${index + 1}=x`).join('; ')
  const crammed = await app.inject({ url: '/read', headers: { cookie: strays } })
  t.equal(crammed.statusCode, 200)
  t.same(crammed.json(), { isNew: true, sizes: {} })
  t.equal(setCookies(crammed).length, 32, 'the lowest 32 strays are cleared, no more')
  t.ok(names(setCookies(crammed)).includes('session.1 cleared'))
})
