import assert from 'node:assert/strict'
import fc from 'fast-check'
import type { FastifyInstance, FastifyRequest, LightMyRequestResponse } from 'fastify'
import t, { type Test } from 'tap'
import { parseCookie } from 'cookie'
import { MemoryArchive } from '../lib/archives/memory.js'
import type { FastifySessionsOptions } from '../lib/index.js'
import { buildApp, cookieValue, setCookies } from './helpers/app.js'
import { RecordingArchive } from './helpers/archives.js'

// Every answer to a hostile Cookie header is the route's normal 200: a fresh
// session, or the session a cookie the server issued opens. The oracle for
// "which cookie value does the server see" is the `cookie` package, the
// parser of @fastify/cookie, whose reading the plugin's own must match.

const RUNS = 60

/** One app under attack, with what it issued and every error it met. */
interface Target {
  readonly label: string
  readonly app: FastifyInstance
  /** The session cookie's name in this mode. */
  readonly name: string
  /** A cookie value the app issued, opening a session that holds `user: 'ada'`. */
  readonly valid: string
  readonly rolling: boolean
  readonly archive: RecordingArchive | undefined
  /** Archive mode: every id that left in a `Set-Cookie` sent by an app holding this secret. */
  readonly issued: Set<string>
  /** Errors thrown in handlers or reaching the error handler. */
  readonly errors: unknown[]
  send: (url: string, cookie: string | undefined) => Promise<LightMyRequestResponse>
}

async function target (t: Test, label: string, options: Partial<FastifySessionsOptions>, issued = new Set<string>()): Promise<Target> {
  const archive = options.mode === 'archive' ? new RecordingArchive(new MemoryArchive({ maxSessions: 100_000 })) : undefined
  const app = await buildApp(t, archive === undefined ? options : { ...options, archive })
  const errors: unknown[] = []
  const guarded = (handler: (request: FastifyRequest) => unknown) =>
    async (request: FastifyRequest) => {
      try {
        return await handler(request)
      } catch (error) {
        errors.push(error)
        throw error
      }
    }
  app.setErrorHandler(async (error, _request, reply) => {
    errors.push(error)
    return reply.code(500).send({ code: (error as { code?: string }).code })
  })
  app.get('/read', guarded((request) => ({
    isNew: request.session.isNew,
    user: request.session.get('user') ?? null,
    has: request.session.has('user'),
    flashes: request.session.flashes().length
  })))
  app.get('/write', guarded((request) => {
    request.session.set('visits', (request.session.get('visits') as number | undefined ?? 0) + 1)
    return { user: request.session.get('user') ?? null }
  }))
  app.get('/untouched', async () => ({ ok: true }))

  const name = options.mode === 'archive' ? 'session-id' : 'session'
  const send = async (url: string, cookie: string | undefined): Promise<LightMyRequestResponse> => {
    const response = await app.inject({ url, headers: cookie === undefined ? {} : { cookie } })
    const value = cookieValue(response, name)
    if (archive !== undefined && value !== undefined && value !== '') issued.add(value.split('.')[0] as string)
    return response
  }
  app.get('/login', async (request) => {
    request.session.set('user', 'ada')
    return { ok: true }
  })
  const valid = cookieValue(await send('/login', undefined), name)
  assert.ok(valid !== undefined && valid !== '', 'the app issues a session cookie')
  return { label, app, name, valid, rolling: options.rolling === true, archive, issued, errors, send }
}

/** The four set-ups under attack; they share one secret, so an id one of them issued is an id "the server" issued. */
async function targets (t: Test): Promise<Target[]> {
  const issued = new Set<string>()
  return [
    await target(t, 'cookie mode', {}, issued),
    await target(t, 'cookie mode, rolling', { rolling: true }, issued),
    await target(t, 'archive mode', { mode: 'archive' }, issued),
    await target(t, 'archive mode, rolling', { mode: 'archive', rolling: true }, issued)
  ]
}

/** What a client can put in a header on the wire: tab, visible ASCII, space and obs-text (bytes 0x80-0xFF, read as latin1). */
const wireChar = fc.oneof(
  { weight: 8, arbitrary: fc.integer({ min: 0x20, max: 0x7e }) },
  { weight: 1, arbitrary: fc.constant(0x09) },
  { weight: 1, arbitrary: fc.integer({ min: 0x80, max: 0xff }) }
).map((code) => String.fromCharCode(code))
const wireString = (maxLength: number) => fc.string({ unit: wireChar, maxLength })

const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
const base64url = (length: number) => fc.string({ unit: fc.constantFrom(...BASE64URL), minLength: length, maxLength: length })

/** Cookie values shaped like what the plugin issues, and like what breaks parsers. */
const hostileValue = fc.oneof(
  wireString(80),
  // a signed id of the right shape with a signature nobody computed
  fc.tuple(base64url(32), base64url(43)).map(([id, mac]) => `${id}.${mac}`),
  // an iron token of the right shape that nobody sealed
  fc.tuple(base64url(64), base64url(22), base64url(24), fc.nat(), base64url(43)).map(([salt, iv, body, expires, mac]) =>
    `Fe26.2**${salt}*${iv}*${body}*${expires}*${salt}*${mac}`),
  // percent-encoding, valid and broken
  fc.array(fc.oneof(fc.constantFrom('%', '%%', '%zz', '%ff', '%00', '%0D%0A', '%3B', '%2A', '%E2%82', '%C0%AF'), base64url(3)), { maxLength: 8 })
    .map((parts) => parts.join('')),
  // quotes, separators and whitespace around a plausible value
  fc.tuple(fc.constantFrom('"', ' ', '\t', '=', '*', '.', ''), base64url(12), fc.constantFrom('"', ' ', '\t', '=', '*', '.', '')).map(([a, v, b]) => `${a}${v}${b}`),
  fc.constantFrom('', '=', '""', 'undefined', 'null', '__proto__', 'constructor', 'toString', '.', '*', '*'.repeat(7), 'Fe26.2', '.'.repeat(76))
)

/** Cookie names: the plugin's two, look-alikes, and any token or junk. */
const hostileName = fc.oneof(
  fc.constantFrom('session', 'session-id', 'Session', 'SESSION-ID', ' session', 'session ', 'session-id ', '__proto__', 'constructor', ''),
  wireString(12).filter((name) => !name.includes(';') && !name.includes('='))
)

const separator = fc.constantFrom('; ', ';', ' ; ', ';;', ', ', ';\t')

const hostileHeader = fc.oneof(
  wireString(300),
  fc.tuple(fc.array(fc.tuple(hostileName, hostileValue), { maxLength: 6 }), separator)
    .map(([pairs, sep]) => pairs.map(([name, value]) => `${name}=${value}`).join(sep))
)

/** The answer `/read` must give for a Cookie header, by the parser's reading of it. */
function expectedRead (target: Target, header: string | undefined): { isNew: boolean, user: string | null } {
  const seen = header === undefined ? undefined : parseCookie(header)[target.name]
  return seen === target.valid ? { isNew: false, user: 'ada' } : { isNew: true, user: null }
}

/** What a response that refused a session cookie sends: its clearing, once; nothing when no such cookie came. */
function refused (target: Target, header: string | undefined): string[] {
  const seen = header === undefined ? undefined : parseCookie(header)[target.name]
  return seen === undefined || seen === '' ? [] : [`${target.name}=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/; HttpOnly; SameSite=Lax`]
}

async function checkHeader (target: Target, header: string | undefined): Promise<void> {
  const read = await target.send('/read', header)
  assert.equal(read.statusCode, 200, `${target.label}: /read answers 200`)
  const expected = expectedRead(target, header)
  assert.deepEqual(read.json(), { ...expected, has: !expected.isNew, flashes: 0 }, `${target.label}: /read sees the right session`)
  if (expected.isNew) assert.deepEqual(setCookies(read), refused(target, header), `${target.label}: a read of a fresh session sends no cookie but the clearing of a refused one`)

  const write = await target.send('/write', header)
  assert.equal(write.statusCode, 200, `${target.label}: /write answers 200`)
  assert.deepEqual(write.json(), { user: expected.user })
  const written = cookieValue(write, target.name)
  assert.ok(written !== undefined && written !== '', `${target.label}: /write sends a session cookie`)
  if (expected.isNew) assert.notEqual(written, target.valid, `${target.label}: a fresh session never gets the valid cookie's session`)

  const untouched = await target.send('/untouched', header)
  assert.equal(untouched.statusCode, 200, `${target.label}: /untouched answers 200`)
  if (!target.rolling || expected.isNew) {
    assert.ok(setCookies(untouched).every((cookie) => cookie.startsWith(`${target.name}=; Max-Age=0;`)), `${target.label}: an untouched route sends no cookie but the clearing of a refused one`)
  }
}

/** Archive mode: every id the archive was asked about left the server in a Set-Cookie first. */
function checkLookups (t: Test, target: Target, expectLookups = true): void {
  if (target.archive === undefined) return
  const asked = target.archive.calls.filter((call) => call.method !== 'set').map((call) => call.domain)
  const foreign = asked.filter((id) => !target.issued.has(id))
  t.same(foreign, [], `${target.label}: no id the server did not issue was looked up`)
  const stored = target.archive.domainsOf('set').filter((id) => !target.issued.has(id))
  t.same(stored, [], `${target.label}: every id stored was sent to the client that caused it`)
  if (expectLookups) t.ok(asked.length > 0, `${target.label}: issued ids were looked up (${asked.length} lookups)`)
}

t.test('any Cookie header a client can send gets the route\'s normal answer in both modes', async (t) => {
  const all = await targets(t)
  await fc.assert(fc.asyncProperty(hostileHeader, async (header) => {
    for (const target of all) await checkHeader(target, header)
  }), { numRuns: RUNS * 2 })
  for (const target of all) {
    t.same(target.errors, [], `${target.label}: no handler met an exception`)
    checkLookups(t, target, false)
  }
})

t.test('a valid session cookie among hostile cookies opens its session exactly when the parser reads it', async (t) => {
  const all = await targets(t)
  const noise = fc.array(fc.tuple(hostileName, hostileValue), { maxLength: 4 })
  let opened = 0
  await fc.assert(fc.asyncProperty(noise, noise, separator, fc.boolean(), async (before, after, sep, quoted) => {
    for (const target of all) {
      const own = quoted ? `"${target.valid}"` : target.valid
      const pairs = [...before, [target.name, own] as const, ...after]
      const header = pairs.map(([name, value]) => `${name}=${value}`).join(sep)
      if (!expectedRead(target, header).isNew) opened++
      await checkHeader(target, header)
    }
  }), { numRuns: RUNS })
  t.ok(opened > 0, `the valid cookie was read through the noise ${opened} times`)
  for (const target of all) {
    t.same(target.errors, [], `${target.label}: no handler met an exception`)
    checkLookups(t, target)
  }
})

/** The part of a cookie value that a mutation may touch. */
function mutable (target: Target): number {
  // An iron token's MAC field is not covered by the MAC itself; hostile
  // spellings of it are a separate matter. Every other field is.
  return target.name === 'session' ? target.valid.lastIndexOf('*') : target.valid.length
}

const mutation = fc.tuple(
  fc.constantFrom('replace', 'insert', 'delete', 'truncate', 'swap-case'),
  fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
  fc.oneof(fc.constantFrom(...BASE64URL), wireChar)
)

function mutate (value: string, limit: number, [kind, where, char]: [string, number, string]): string {
  const at = Math.floor(where * limit)
  const c = value[at] ?? ''
  switch (kind) {
    case 'replace': return value.slice(0, at) + char + value.slice(at + 1)
    case 'insert': return value.slice(0, at) + char + value.slice(at)
    case 'delete': return value.slice(0, at) + value.slice(at + 1)
    case 'truncate': return value.slice(0, at)
    default: return value.slice(0, at) + (c === c.toUpperCase() ? c.toLowerCase() : c.toUpperCase()) + value.slice(at + 1)
  }
}

t.test('an issued cookie changed anywhere its integrity covers is a fresh session, never a lookup of the changed id', async (t) => {
  const all = await targets(t)
  let changed = 0
  await fc.assert(fc.asyncProperty(fc.array(mutation, { minLength: 1, maxLength: 3 }), async (mutations) => {
    for (const target of all) {
      const value = mutations.reduce((current, step) => mutate(current, Math.min(mutable(target), current.length), step), target.valid)
      if (value !== target.valid) changed++
      await checkHeader(target, `${target.name}=${value}`)
    }
  }), { numRuns: RUNS * 2 })
  t.ok(changed > 0, `${changed} changed cookies were refused`)
  for (const target of all) {
    t.same(target.errors, [], `${target.label}: no handler met an exception`)
    checkLookups(t, target)
  }
})

t.test('a cookie of the other mode, or of another secret, is a fresh session; one of the same mode and secret opens its session', async (t) => {
  const all = await targets(t)
  const foreignSecret = 'yet-another-secret-of-32-chars!!!'
  const foreign = [
    await target(t, 'foreign secret', { secret: foreignSecret }),
    await target(t, 'foreign secret, archive mode', { mode: 'archive', secret: foreignSecret })
  ]
  for (const reader of all) {
    for (const source of [...all, ...foreign]) {
      for (const name of ['session', 'session-id']) {
        const read = await reader.send('/read', `${name}=${source.valid}`)
        t.equal(read.statusCode, 200)
        // A stateless cookie is valid wherever its secret is; an archive id only where it is stored.
        const opens = name === reader.name && source.name === reader.name && !foreign.includes(source) &&
          (reader.archive === undefined || source === reader)
        t.same(read.json(), { isNew: !opens, user: opens ? 'ada' : null, has: opens, flashes: 0 },
          `${reader.label} reading ${name}=<cookie of ${source.label}>`)
      }
    }
    t.same(reader.errors, [], `${reader.label}: no handler met an exception`)
    checkLookups(t, reader)
  }
  const [, foreignArchive] = foreign as [Target, Target]
  t.same(foreignArchive.archive?.calls.filter((call) => !foreignArchive.issued.has(call.domain)), [], 'nor in the app of the other secret')
})
