import Fastify from 'fastify'
import t, { type Test } from 'tap'
import { fastifySessions, type FastifySessionsOptions } from '../lib/index.js'
import { SECRET } from './helpers/app.js'

/** The error `app.ready()` fails with for these options (the secret added), or undefined. */
async function registrationError (t: Test, options: Record<string, unknown>): Promise<unknown> {
  const app = Fastify()
  t.teardown(() => app.close())
  app.register(fastifySessions, { secret: SECRET, ...options } as FastifySessionsOptions)
  return app.ready().then(() => undefined, (err: unknown) => err)
}

/** Asserts a refusal naming `option`, whose message says `advice`. */
async function refuses (t: Test, options: Record<string, unknown>, option: string, advice: RegExp): Promise<void> {
  const error = await registrationError(t, options)
  t.match(error, { code: 'FST_SESSION_INVALID_OPTION', option }, `${option} is refused`)
  t.match((error as Error).message, `option "${option}"`, 'the message names it')
  t.match((error as Error).message, advice, `and says ${String(advice)}`)
}

const noop = (): void => {}
const expressStore = { get: noop, set: noop, destroy: noop, touch: noop }

// [what, options, the option named, what the message tells to write]
const peers: Array<[string, Record<string, unknown>, string, RegExp]> = [
  ['an express-session store as store', { store: expressStore }, 'store', /archive: new ExpressStoreArchive\(store\)/],
  ['any other store', { store: {} }, 'store', /archive option: new RedisArchive/],
  ['saveUninitialized', { saveUninitialized: false }, 'saveUninitialized', /stored only when they change.*nothing to set/],
  ['resave', { resave: false }, 'resave', /stored only when they change.*nothing to set/],
  ['cookie.maxAge in seconds', { cookie: { maxAge: 3600 } }, 'cookie.maxAge', /top-level maxAge, in seconds.*maxAge: 3600$/],
  ['cookie.maxAge in milliseconds', { cookie: { maxAge: 86_400_000 } }, 'cookie.maxAge', /86400000 looks like milliseconds \(1 day\): write maxAge: 86400$/],
  ['cookie.maxAge of whole minutes in milliseconds', { cookie: { maxAge: 15 * 60 * 1000 } }, 'cookie.maxAge', /looks like milliseconds \(15 minutes\): write maxAge: 900$/],
  ['cookie.maxAge of 30 days in milliseconds', { cookie: { maxAge: 30 * 86_400_000 } }, 'cookie.maxAge', /looks like milliseconds \(30 days\): write maxAge: 2592000, absoluteTimeout: 2592000$/],
  ['cookie.maxAge that is not a number', { cookie: { maxAge: '1d' } }, 'cookie.maxAge', /top-level maxAge, in seconds, which is also the idle timeout$/],
  ['cookie.expires', { cookie: { expires: new Date() } }, 'cookie.expires', /maxAge.*cookie\.persistent: false/],
  ['cookie.signed', { cookie: { signed: true } }, 'cookie.signed', /always signed.*nothing to set/],
  ['expiry', { expiry: 3600 }, 'expiry', /maxAge: 3600$/],
  ['expiry beyond the absolute timeout', { expiry: 30 * 86_400 }, 'expiry', /maxAge: 2592000, absoluteTimeout: 2592000$/],
  ['key', { key: Buffer.alloc(32) }, 'key', /write secret instead: a string of at least 32/],
  ['salt', { salt: 'mq9hDxBVDbspDR6n' }, 'salt', /no salt is needed/],
  ['sessionName', { sessionName: 'session' }, 'sessionName', /request\.session/],
  ['cookiePrefix', { cookiePrefix: 's:' }, 'cookiePrefix', /no prefix; nothing to set/],
  ['idGenerator', { idGenerator: noop }, 'idGenerator', /192 random bits.*cannot be chosen/],
  ['genid', { genid: noop }, 'genid', /192 random bits.*cannot be chosen/],
  ['name', { name: 'connect.sid' }, 'name', /cookieName in cookie mode.*idCookieName in archive mode/],
  ['password', { password: SECRET }, 'password', /write secret instead.*secret: \[newer, older\]/],
  ['ttl', { ttl: 3600 }, 'ttl', /maxAge: 3600$/],
  ['ttl of 14 days', { ttl: 14 * 86_400 }, 'ttl', /maxAge: 1209600, absoluteTimeout: 1209600$/],
  ['ttl of 0', { ttl: 0 }, 'ttl', /every session ends, so ttl: 0 has no counterpart/],
  ['cookieOptions', { cookieOptions: { secure: true } }, 'cookieOptions', /write cookie instead/],
  ['crypto', { crypto: {} }, 'crypto', /iron.*nothing to set/],
  ['logBindings', { logBindings: {} }, 'logBindings', /request\.log/],
  ['algorithm', { algorithm: 'sha512' }, 'algorithm', /HMAC-SHA256/],
  ['prefix', { prefix: 'sess:' }, 'prefix', /new RedisArchive\(\{ prefix \}\)/],
  ['unset', { unset: 'destroy' }, 'unset', /request\.session\.destroy\(\)/],
  ['proxy', { proxy: true }, 'proxy', /Fastify\(\{ trustProxy: true \}\)/]
]

for (const [what, options, option, advice] of peers) {
  t.test(`another plugin's option, ${what}, is refused with what to write instead`, async (t) => {
    await refuses(t, options, option, advice)
  })
}

t.test('the message names the plugins that have the option', async (t) => {
  await refuses(t, { expiry: 60 }, 'expiry', /is an option of @fastify\/secure-session, not of fastify-sessions/)
  await refuses(t, { key: 'k' }, 'key', /is an option of @fastify\/secure-session and @mgcrea\/fastify-session, not/)
  await refuses(t, { store: {} }, 'store', /is an option of @fastify\/session, @mgcrea\/fastify-session and express-session, not/)
})

t.test('a misspelt name of another plugin\'s option gets that option\'s advice', async (t) => {
  await refuses(t, { cookie: { maxage: 86_400_000 } }, 'cookie.maxage', /"cookie\.maxAge", which it looks like, is an option of .*write maxAge: 86400$/)
  await refuses(t, { Store: expressStore }, 'Store', /"store", which it looks like.*ExpressStoreArchive/)
})

t.test('an archive that looks like an express-session store gets the ExpressStoreArchive advice', async (t) => {
  await refuses(t, { archive: expressStore }, 'archive', /express-session store.*archive: new ExpressStoreArchive\(store\)/)
  await refuses(t, { mode: 'archive', archive: { get: noop, set: noop } }, 'archive', /must implement the Archive contract/)
})

// [options, the option named, the name it suggests]
const typos: Array<[Record<string, unknown>, string, string]> = [
  [{ maxage: 60 }, 'maxage', 'maxAge'],
  [{ secrets: [SECRET] }, 'secrets', 'secret'],
  [{ absoluteTimout: 60 }, 'absoluteTimout', 'absoluteTimeout'],
  [{ cookiename: 'sid' }, 'cookiename', 'cookieName'],
  [{ rolling: true, roling: true }, 'roling', 'rolling'],
  [{ mdoe: 'archive' }, 'mdoe', 'mode'],
  [{ cookie: { httponly: false } }, 'cookie.httponly', 'cookie.httpOnly'],
  [{ cookie: { samesite: 'lax' } }, 'cookie.samesite', 'cookie.sameSite'],
  [{ cookie: { persistant: false } }, 'cookie.persistant', 'cookie.persistent'],
  [{ cookieSize: { maximum: 4096 } }, 'cookieSize.maximum', 'cookieSize.max'],
  [{ cookieSize: { warning: 3000 } }, 'cookieSize.warning', 'cookieSize.warn'],
  [{ sameSite: 'none' }, 'sameSite', 'cookie.sameSite'],
  [{ secure: true }, 'secure', 'cookie.secure'],
  [{ secretKey: SECRET }, 'secretKey', 'secret'],
  [{ idCookie: 'sid' }, 'idCookie', 'idCookieName']
]

for (const [options, option, suggested] of typos) {
  t.test(`a typo, ${option}, is refused with the name it most likely meant, ${suggested}`, async (t) => {
    await refuses(t, options, option, new RegExp(`did you mean "${suggested.replace('.', '\\.')}"\\?$`))
  })
}

t.test('a name near nothing known is refused with the list of the options at its level', async (t) => {
  await refuses(t, { foo: 1 }, 'foo', /the options are secret, cookieName, .*, types$/)
  await refuses(t, { cookie: { colour: 'blue' } }, 'cookie.colour', /the cookie options are path, domain, .*, persistent$/)
  await refuses(t, { cookieSize: { bytes: 1 } }, 'cookieSize.bytes', /the cookieSize options are warn, max, overflow, maxTotal$/)
})

t.test('names of Object.prototype members are unknown options too', async (t) => {
  await refuses(t, { constructor: 1 }, 'constructor', /the options are/)
  await refuses(t, JSON.parse('{ "__proto__": { "admin": true } }') as Record<string, unknown>, '__proto__', /the options are/)
  await refuses(t, { cookie: { toString: 'x' } }, 'cookie.toString', /the cookie options are/)
})

t.test('an unknown name is refused even when its value is undefined', async (t) => {
  await refuses(t, { store: undefined }, 'store', /archive/)
  await refuses(t, { cookie: { maxage: undefined } }, 'cookie.maxage', /top-level maxAge/)
})

t.test('unknown names are reported before any other problem, so a peer\'s options get the advice first', async (t) => {
  const error = await registrationError(t, { secret: undefined, password: 'too short', cookieName: 'iron', ttl: 0 })
  t.match(error, { code: 'FST_SESSION_INVALID_OPTION', option: 'password' })
})

t.test('every known option at every level still registers', async (t) => {
  const options: Partial<FastifySessionsOptions> = {
    cookieName: 'sid',
    idCookieName: 'sid-id',
    mode: 'cookie',
    maxAge: 60,
    absoluteTimeout: 120,
    revocable: false,
    maxSize: 4096,
    rolling: true,
    types: [],
    cookie: { path: '/', httpOnly: true, secure: 'auto', sameSite: 'lax', partitioned: false, persistent: true },
    cookieSize: { warn: 3000, max: 4000, overflow: 'error' }
  }
  t.equal(await registrationError(t, options), undefined)
})
