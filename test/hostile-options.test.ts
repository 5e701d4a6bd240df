import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import http from 'node:http'
import https from 'node:https'
import path from 'node:path'
import fc from 'fast-check'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import t, { type Test } from 'tap'
import { MemoryArchive } from '../lib/archives/memory.js'
import { fastifySessions, type FastifySessionsOptions } from '../lib/index.js'
import { SECRET } from './helpers/app.js'
import { tempDir } from './helpers/temp-dir.js'

const RUNS = 40

/** Checks a property and counts it as one passing assertion; a counterexample fails the test. */
async function holds<T> (t: Test, property: fc.IAsyncProperty<T>, numRuns: number, what: string): Promise<void> {
  await fc.assert(property, { numRuns })
  t.pass(`${what} (${numRuns} cases)`)
}

/** The error registration fails with, or undefined when the app gets ready. */
async function registrationError (options: Record<string, unknown>): Promise<unknown> {
  const app = Fastify()
  app.register(fastifySessions, { secret: SECRET, ...options } as FastifySessionsOptions)
  const error = await app.ready().then(() => undefined, (err: unknown) => err)
  await app.close()
  return error
}

async function refused (options: Record<string, unknown>): Promise<boolean> {
  return (await registrationError(options) as { code?: string } | undefined)?.code === 'FST_SESSION_INVALID_OPTION'
}

const TOKEN_CHARS = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
const tokenString = (minLength: number, maxLength: number) =>
  fc.string({ unit: fc.constantFrom(...TOKEN_CHARS), minLength, maxLength })

/** Any Unicode scalar value outside ASCII. */
const nonAscii = fc.oneof(fc.integer({ min: 0x80, max: 0xd7ff }), fc.integer({ min: 0xe000, max: 0x10ffff }))
  .map((code) => String.fromCodePoint(code))
/** ASCII control characters: NUL to US, and DEL. CR and LF come often. */
const control = fc.oneof(
  fc.constantFrom('\r', '\n', '\r\n', '\0', '\x7f'),
  fc.integer({ min: 0, max: 0x1f }).map((code) => String.fromCharCode(code))
)
/** Characters no cookie name may hold: separators, whitespace, controls and non-ASCII. */
const notInName = fc.oneof(fc.constantFrom(...'()<>@,;:\\"/[]?={} \t'), control, nonAscii)
/** Any string at all, for the text around a bad character. */
const anything = fc.string({ unit: 'binary', maxLength: 12 })

/** Whether a name would fall under a cookie prefix in a browser, which matches prefixes case-insensitively. */
function prefixed (name: string): boolean {
  const lower = name.toLowerCase()
  return lower.startsWith('__secure-') || lower.startsWith('__host-')
}

t.test('a cookie name with a separator, whitespace, CR/LF, a control or a non-ASCII character is refused at register', async (t) => {
  await holds(t, fc.asyncProperty(
    fc.tuple(tokenString(0, 8), notInName, anything).map(([a, bad, b]) => a + bad + b),
    fc.constantFrom('cookieName', 'idCookieName'),
    async (name, option) => refused({ [option]: name })
  ), RUNS * 2, 'every such name is refused')
  t.ok(await refused({ cookieName: 'session\r\nSet-Cookie: admin=1' }), 'header injection through the name is refused')
})

const KNOWN: Record<string, readonly string[]> = {
  '': ['secret', 'cookieName', 'idCookieName', 'mode', 'archive', 'maxAge', 'absoluteTimeout', 'revocable', 'maxSize', 'rolling', 'cookie', 'cookieSize', 'types'],
  cookie: ['path', 'domain', 'httpOnly', 'secure', 'sameSite', 'partitioned', 'persistent'],
  cookieSize: ['warn', 'max', 'overflow']
}

t.test('any name that is not an option, at any level and with any value, is refused naming it', async (t) => {
  const level = fc.constantFrom('', 'cookie', 'cookieSize')
  const name = fc.oneof(fc.string({ unit: 'binary', minLength: 1, maxLength: 16 }), fc.constantFrom('__proto__', 'constructor', 'hasOwnProperty', 'MAXAGE', ' secret'))
  await holds(t, fc.asyncProperty(level, name, fc.anything(), async (at, key, value) => {
    if (KNOWN[at]!.includes(key)) return true
    const given: Record<string, unknown> = JSON.parse(`{${JSON.stringify(key)}: null}`)
    given[key] = value
    const error = await registrationError(at === '' ? given : { [at]: given }) as { code?: string, option?: string } | undefined
    return error?.code === 'FST_SESSION_INVALID_OPTION' && error.option === (at === '' ? key : `${at}.${key}`)
  }), RUNS * 2, 'every unknown name is refused')
})

/** An app in `mode` whose session cookie is named `name`, and its cookie round trip. */
async function roundTrip (t: Test, mode: 'cookie' | 'archive', options: Partial<FastifySessionsOptions>, server: FastifyServerOptions = {}) {
  const app = Fastify(server)
  t.teardown(() => app.close())
  await app.register(fastifySessions, { secret: SECRET, mode, archive: new MemoryArchive(), ...options })
  app.get('/write', async (request) => {
    request.session.set('user', 'ada')
    return { ok: true }
  })
  app.get('/read', async (request) => ({ user: request.session.get('user') ?? null }))
  return app
}

t.test('any RFC 6265 token is a working cookie name in both modes', async (t) => {
  // Names of Object.prototype members are left to a test of their own.
  const names = tokenString(1, 16).filter((name) => !prefixed(name) && !(name in Object.prototype))
  await holds(t, fc.asyncProperty(names, fc.constantFrom('cookie' as const, 'archive' as const), async (name, mode) => {
    const option = mode === 'cookie' ? { cookieName: name, idCookieName: `${name}x` } : { idCookieName: name, cookieName: `${name}x` }
    const app = await roundTrip(t, mode, option)
    const write = await app.inject('/write')
    const header = write.headers['set-cookie'] as string
    if (!header.startsWith(`${name}=`)) return false
    const value = header.slice(name.length + 1, header.indexOf(';'))
    const read = await app.inject({ url: '/read', headers: { cookie: `${name}=${value}` } })
    await app.close()
    return read.json().user === 'ada'
  }), RUNS / 2, 'every token name round-trips')
})

t.test('a path that is not absolute, or holds ";", a control or a non-ASCII character, is refused at register', async (t) => {
  const bad = fc.oneof(
    fc.tuple(fc.string({ unit: 'grapheme-ascii', maxLength: 8 }), fc.oneof(fc.constant(';'), control, nonAscii), anything)
      .map(([a, c, b]) => `/${a}${c}${b}`),
    anything.filter((value) => !value.startsWith('/'))
  )
  await holds(t, fc.asyncProperty(bad, async (value) => refused({ cookie: { path: value } })), RUNS, 'every such path is refused')
  t.ok(await refused({ cookie: { path: '/; Domain=evil.example' } }), 'attribute injection through the path is refused')
})

t.test('any absolute path of visible ASCII without ";" is written as given', async (t) => {
  const visible = fc.integer({ min: 0x20, max: 0x7e }).filter((code) => code !== 0x3b).map((code) => String.fromCharCode(code))
  await holds(t, fc.asyncProperty(fc.string({ unit: visible, maxLength: 20 }), fc.constantFrom('cookie' as const, 'archive' as const), async (rest, mode) => {
    const app = await roundTrip(t, mode, { cookie: { path: `/${rest}` } })
    const cookie = (await app.inject('/write')).headers['set-cookie'] as string
    await app.close()
    return cookie.split('; ').includes(`Path=/${rest}`)
  }), RUNS / 2, 'every such path is written')
})

t.test('a domain with a separator, whitespace, CR/LF, a non-ASCII character or a malformed label is refused at register', async (t) => {
  const label = fc.string({ unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789'), minLength: 1, maxLength: 10 })
  const bad = fc.oneof(
    fc.tuple(label, fc.oneof(fc.constantFrom(...'()<>@,;:\\"/[]?={} \t_*!'), control, nonAscii), label).map(([a, c, b]) => `${a}${c}${b}.com`),
    fc.tuple(label, label).map(([a, b]) => `${a}..${b}`),
    label.map((a) => `-${a}.com`),
    label.map((a) => `${a}-.com`),
    label.map((a) => `${a}.com.`),
    fc.constantFrom('', '.', '..', 'a'.repeat(64) + '.com', 'example.com:8080', 'xn--bcher-kva.ch/', 'bücher.ch', '[::1]')
  )
  await holds(t, fc.asyncProperty(bad, async (domain) => refused({ cookie: { domain } })), RUNS, 'every such domain is refused')
  t.ok(await refused({ cookie: { domain: 'example.com; Secure' } }), 'attribute injection through the domain is refused')
})

t.test('any host name is written as the Domain attribute', async (t) => {
  await holds(t, fc.asyncProperty(fc.domain(), fc.boolean(), async (domain, dot) => {
    const given = dot ? `.${domain}` : domain
    const app = await roundTrip(t, 'cookie', { cookie: { domain: given } })
    const cookie = (await app.inject('/write')).headers['set-cookie'] as string
    await app.close()
    return cookie.split('; ').includes(`Domain=${given}`)
  }), RUNS / 2, 'every host name is written')
})

t.test("a sameSite other than 'lax', 'strict' or 'none' is refused at register", async (t) => {
  const near = fc.tuple(fc.constantFrom('lax', 'strict', 'none', 'Lax', 'LAX', 'Strict', 'None'), anything, anything)
    .map(([value, a, b]) => a + value + b)
  await holds(t, fc.asyncProperty(fc.oneof(near, anything, fc.constantFrom('lax\r\n', ' lax', 'lax;', 'Lax')), async (sameSite) => {
    if (sameSite === 'lax' || sameSite === 'strict' || sameSite === 'none') return true
    return refused({ cookie: { sameSite } })
  }), RUNS, 'every other sameSite is refused')
  for (const sameSite of [true, 1, null, ['lax'], { lax: true }]) t.ok(await refused({ cookie: { sameSite } }), JSON.stringify(sameSite))
})

t.test('the __Secure- and __Host- prefix rules, for either cookie, in every combination', async (t) => {
  const secures = [true, false, 'auto'] as const
  for (const prefix of ['__Secure-', '__Host-']) {
    for (const option of ['cookieName', 'idCookieName']) {
      for (const secure of secures) {
        for (const cookiePath of ['/', '/app']) {
          for (const domain of [undefined, 'example.com']) {
            const cookie: Record<string, unknown> = { secure, path: cookiePath }
            if (domain !== undefined) cookie['domain'] = domain
            // secure false with the default sameSite is fine on its own; only the prefix forbids it.
            const allowed = secure === true && (prefix === '__Secure-' || (cookiePath === '/' && domain === undefined))
            const error = await registrationError({ [option]: `${prefix}sid`, cookie })
            const label = `${option} ${prefix}sid, ${JSON.stringify(cookie)}`
            if (allowed) t.equal(error, undefined, `${label} registers`)
            else t.match(error, { code: 'FST_SESSION_INVALID_OPTION' }, `${label} is refused`)
          }
        }
      }
    }
  }
})

/** A self-signed certificate for 127.0.0.1, made for this run. */
async function certificate (t: Test): Promise<{ key: Buffer, cert: Buffer }> {
  const dir = await tempDir(t)
  const key = path.join(dir, 'key.pem')
  const cert = path.join(dir, 'cert.pem')
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1'], { stdio: 'ignore' })
  return { key: readFileSync(key), cert: readFileSync(cert) }
}

/** The Set-Cookie headers of one real request to a listening server. */
function request (url: string, headers: Record<string, string>): Promise<string[]> {
  const client = url.startsWith('https:') ? https : http
  return new Promise((resolve, reject) => {
    const outgoing = client.get(url, { headers, rejectUnauthorized: false, agent: false }, (response) => {
      response.resume()
      response.on('end', () => resolve(response.headers['set-cookie'] ?? []))
    })
    outgoing.on('error', reject)
  })
}

async function listening (app: FastifyInstance): Promise<string> {
  await app.listen({ host: '127.0.0.1', port: 0 })
  return app.listeningOrigin
}

t.test("'auto' marks the cookie Secure by the real protocol; X-Forwarded-Proto counts only from a trusted proxy (both modes)", async (t) => {
  const tls = await certificate(t)
  // [protocol, trustProxy, X-Forwarded-Proto, Secure expected]
  const cases: Array<[string, NonNullable<FastifyServerOptions['trustProxy']>, string | undefined, boolean]> = [
    ['http', false, undefined, false],
    ['http', false, 'https', false],
    ['http', true, 'https', true],
    ['http', '127.0.0.1', 'https', true],
    ['http', '10.0.0.0/8', 'https', false],
    ['http', true, 'http', false],
    ['https', false, undefined, true],
    ['https', false, 'http', true],
    ['https', '10.0.0.0/8', 'http', true],
    ['https', true, 'http', false]
  ]
  for (const mode of ['cookie', 'archive'] as const) {
    for (const [protocol, trustProxy, forwarded, secure] of cases) {
      const server: FastifyServerOptions & { https?: { key: Buffer, cert: Buffer } } = { trustProxy }
      if (protocol === 'https') server.https = tls
      const app = await roundTrip(t, mode, {}, server)
      const origin = await listening(app)
      t.ok(origin.startsWith(`${protocol}://`))
      const cookies = await request(`${origin}/write`, forwarded === undefined ? {} : { 'x-forwarded-proto': forwarded })
      t.equal(cookies.length, 1)
      t.equal(cookies[0]!.split('; ').includes('Secure'), secure,
        `${mode} mode over ${protocol}, trustProxy ${String(trustProxy)}, X-Forwarded-Proto ${forwarded ?? '(none)'}: ${secure ? '' : 'not '}Secure`)
      await app.close()
    }
  }
})

t.test('secure true is Secure over plain http too, and false never, whatever the proxy says (both modes)', async (t) => {
  for (const mode of ['cookie', 'archive'] as const) {
    for (const secure of [true, false]) {
      const app = await roundTrip(t, mode, { cookie: { secure, sameSite: secure ? 'none' : 'lax' } }, { trustProxy: true })
      const origin = await listening(app)
      for (const forwarded of ['http', 'https']) {
        const cookies = await request(`${origin}/write`, { 'x-forwarded-proto': forwarded })
        t.equal(cookies[0]!.split('; ').includes('Secure'), secure, `${mode}, secure ${secure}, X-Forwarded-Proto ${forwarded}`)
      }
      await app.close()
    }
  }
})
