// The demo: a visit counter, a login form, flash messages, logout, and a view
// of what the session holds and where it lives. `npm start` runs it.
//
//   SESSION_MODE    cookie (the default) | file | memory | redis
//   SESSION_SECRET  32 characters or more; without it a random one is made for this process
//   SESSION_DIR     the file archive's directory (default .gen/sessions)
//   REDIS_URL       the Redis of the redis mode (default redis://127.0.0.1:6379)
//   REDIS_PREFIX    the prefix of its keys (default fastify-sessions-demo:)
//   PORT, HOST      where to listen (default 127.0.0.1:3000; PORT=0 picks a free port)
import { randomBytes } from 'node:crypto'
import path from 'node:path'
import Fastify, { LogController } from 'fastify'
import formbody from '@fastify/formbody'
import { fastifySessions, FileArchive, MemoryArchive, RedisArchive } from 'fastify-sessions'
import { errorPage, homePage, notFoundPage, signedOutPage } from './views.js'

const MODES = ['cookie', 'file', 'memory', 'redis']
const DAY = 24 * 60 * 60
// The plugin's defaults, named here so the page can find its own cookie.
const COOKIE_NAME = 'session'
const ID_COOKIE_NAME = 'session-id'
const COOKIE_LIMIT = 4096

const mode = process.env.SESSION_MODE || 'cookie'
if (!MODES.includes(mode)) {
  console.error(`SESSION_MODE must be one of ${MODES.join(', ')}, not "${mode}"`)
  process.exit(1)
}

// Where sessions live, in words for the page, and the archive that keeps them.
function chooseArchive () {
  if (mode === 'file') {
    const dir = path.resolve(process.env.SESSION_DIR || '.gen/sessions')
    return { archive: new FileArchive({ dir }), where: `FileArchive in ${dir}` }
  }
  if (mode === 'memory') return { archive: new MemoryArchive(), where: 'MemoryArchive, in this process (gone on restart)' }
  if (mode === 'redis') {
    const url = process.env.REDIS_URL || 'redis://127.0.0.1:6379'
    const shown = new URL(url)
    shown.username = ''
    shown.password = ''
    const prefix = process.env.REDIS_PREFIX || 'fastify-sessions-demo:'
    return { archive: new RedisArchive({ url, prefix }), where: `RedisArchive at ${shown.href}, keys ${prefix}{id}` }
  }
  return { archive: undefined, where: 'sealed in the cookie itself (iron Fe26.2); nothing is stored on the server' }
}

const { archive, where } = chooseArchive()
const app = Fastify({
  logger: { level: process.env.LOG_LEVEL || 'info' },
  logController: new LogController({ disableRequestLogging: true }),
  // Ctrl+C stops the demo at once, even with a browser holding connections open.
  forceCloseConnections: true
})

let secret = process.env.SESSION_SECRET
const randomSecret = secret === undefined || secret === ''
if (randomSecret) {
  secret = randomBytes(32).toString('base64url')
  app.log.warn('SESSION_SECRET is not set: signing with a random secret made for this process, so every session ends when it stops')
}

// An operator mistake, such as a Redis that does not answer or a port in use:
// say what went wrong and stop.
function cannotStart (error) {
  console.error(`The demo cannot start in ${mode} mode: ${error.code ?? error.name}: ${error.message}`)
  process.exit(1)
}

// Forms are only accepted from this site's own pages: browsers say where a
// request comes from in Sec-Fetch-Site, and older ones in Origin.
app.addHook('onRequest', async function refuseCrossSitePosts (request) {
  if (request.method !== 'POST') return
  const site = request.headers['sec-fetch-site']
  const origin = request.headers.origin
  const crossSite = site === undefined
    ? origin !== undefined && origin !== `${request.protocol}://${request.host}`
    : site !== 'same-origin' && site !== 'none'
  if (crossSite) {
    const error = new Error('This form was posted from another site: refused.')
    error.statusCode = 403
    error.code = 'CROSS_SITE_POST'
    throw error
  }
})

await app.register(formbody)
// Cookie attributes are the plugin's defaults: HttpOnly, SameSite=Lax, Path=/,
// Secure over HTTPS, Max-Age of one day.
try {
  await app.register(fastifySessions, {
    secret,
    mode: mode === 'cookie' ? 'cookie' : 'archive',
    // "Remember me" keeps a session for 30 days, so sessions may live that long.
    absoluteTimeout: 30 * DAY,
    ...(archive === undefined ? {} : { archive })
  })
} catch (error) {
  cannotStart(error)
}

// What the page offers depends on where sessions live: the page never shows
// a control that cannot work.
const features = {
  // `request.session.options({ maxAge })`: a lifetime for one session.
  rememberMe: (session) => typeof session.options === 'function',
  // `app.sessions.list(userId)` and `app.sessions.revokeUser(userId, { except })`:
  // sessions the server keeps (cookie mode needs `revocable: true` for them).
  devices: () => mode !== 'cookie',
  // A session grown past the cookie limit: shown once the plugin can move it to the archive.
  grow: () => false
}

// The keys this app stores, for the session view when the plugin has no `data()`.
const KNOWN_KEYS = ['visits', 'user', 'padding']

function sessionContents (session) {
  if (typeof session.data === 'function') return { contents: session.data(), contentsFrom: 'Every key, from session.data().' }
  const contents = {}
  for (const key of KNOWN_KEYS) if (session.has(key)) contents[key] = session.get(key)
  return { contents, contentsFrom: `The keys this app stores (${KNOWN_KEYS.join(', ')}), read with session.has() and session.get().` }
}

// The exact Set-Cookie value this response carries for the session, or else
// the cookie the browser sent, as "name=value".
function sessionCookie (request, reply) {
  const name = request.session.mode === 'cookie' ? COOKIE_NAME : ID_COOKIE_NAME
  const sent = [reply.raw.getHeader('set-cookie') ?? []].flat().map(String)
  const header = sent.find((cookie) => cookie.startsWith(`${name}=`))
  if (header !== undefined) return { name, bytes: Buffer.byteLength(header), source: 'Set-Cookie of this page' }
  const received = request.cookies?.[name]
  if (received !== undefined) return { name, bytes: Buffer.byteLength(`${name}=${received}`), source: 'cookie your browser sent' }
  return { name, bytes: 0, source: 'no cookie' }
}

function userIdOf (name) {
  return name.toLowerCase()
}

// Pages that depend on the session are never cached: Back after logout must
// ask the server again rather than show the signed-in page from the cache.
function noStore (reply) {
  reply.header('cache-control', 'no-store')
}

app.get('/', async (request, reply) => {
  const session = request.session
  const visits = (session.get('visits') ?? 0) + 1
  session.set('visits', visits)
  const messages = session.flashes()
  const user = session.get('user')
  // Stored now rather than after the handler, so the page can show the cookie it sets.
  await session.save()
  let devices
  if (features.devices() && user !== undefined) {
    devices = (await app.sessions.list(user.id)).map((device) => ({ ...device, current: device.handle === session.handle }))
  }
  noStore(reply)
  reply.type('text/html; charset=utf-8')
  return homePage({
    mode,
    where,
    randomSecret,
    visits,
    messages,
    user,
    sessionId: session.id,
    ...sessionContents(session),
    cookie: { ...sessionCookie(request, reply), limit: COOKIE_LIMIT },
    rememberMe: features.rememberMe(session),
    devices,
    grow: features.grow()
  })
})

// Every form posts and is answered with 303 See Other to a page: reloading or
// going Back never posts twice, and a second click on a button is harmless.
app.post('/login', async (request, reply) => {
  const name = String(request.body?.name ?? '').trim().slice(0, 40) || 'stranger'
  // A new session on every change of privilege (a new id in archive mode):
  // a session planted in the browser before login is worth nothing after it.
  await request.session.regenerate(['visits'])
  request.session.set('user', { id: userIdOf(name), name, since: new Date() })
  // Ties the session to the user, so that the devices card lists it.
  request.session.bindUser(userIdOf(name))
  if (request.body?.remember === 'on' && features.rememberMe(request.session)) {
    request.session.options({ maxAge: 30 * DAY })
  }
  request.session.flash(`Welcome, ${name}!`)
  return reply.redirect('/', 303)
})

// Logout is a POST, never a GET: another site cannot sign you out with an
// <img src>. SameSite=Lax (the plugin's default) keeps the browser from
// sending the cookie with a form another site posts here, but the clearing
// cookie of a logout would still land, so posts from other sites are refused
// (see refuseCrossSitePosts).
app.post('/logout', async (request, reply) => {
  await request.session.destroy()
  return reply.redirect('/signed-out', 303)
})

app.post('/devices/sign-out-others', async (request, reply) => {
  const user = request.session.get('user')
  if (!features.devices() || user === undefined) return reply.redirect('/', 303)
  await app.sessions.revokeUser(user.id, { except: request.session.handle })
  request.session.flash('Your other devices are signed out.')
  return reply.redirect('/', 303)
})

app.post('/grow', async (request, reply) => {
  if (!features.grow()) return reply.redirect('/', 303)
  const padding = request.session.get('padding') ?? ''
  request.session.set('padding', padding + 'x'.repeat(1024))
  return reply.redirect('/', 303)
})

// A page without a session at all: it reads no cookie and sets none.
app.get('/signed-out', { config: { session: false } }, async (request, reply) => {
  reply.type('text/html; charset=utf-8')
  return signedOutPage()
})

app.get('/health', { config: { session: false } }, async () => 'ok')

app.setNotFoundHandler(async (request, reply) => {
  reply.code(404).type('text/html; charset=utf-8')
  return notFoundPage(request.url)
})

app.setErrorHandler(async (error, request, reply) => {
  const status = error.statusCode >= 400 ? error.statusCode : 500
  if (status >= 500) request.log.error({ err: error }, 'request failed')
  reply.code(status).header('cache-control', 'no-store').type('text/html; charset=utf-8')
  return errorPage(status, error.code, status < 500 ? error.message : undefined)
})

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    app.close().then(() => process.exit(0), () => process.exit(1))
  })
}

const port = process.env.PORT ? Number(process.env.PORT) : 3000
const address = await app.listen({ port, host: process.env.HOST || '127.0.0.1' }).catch(cannotStart)
console.log(`fastify-sessions demo, ${mode} mode: open ${address}/`)
