import t, { type Test } from 'tap'
import { addSessionRoutes, buildApp, cookieValue, LogCapture, OTHER_SECRET, setCookies } from './helpers/app.js'
import { ironSeal, sessionPayload, tokenFields, withValidMac } from './helpers/iron.js'

const FIELDS = ['prefix', 'password id', 'encryption salt', 'iv', 'ciphertext', 'expiration', 'integrity salt', 'mac']

/** Changes the first character of a field (or adds one to an empty field). */
function flip (field: string): string {
  if (field === '') return 'a'
  const first = field[0] === '1' ? '2' : field[0] === 'A' ? 'B' : field[0] === 'F' ? 'G' : 'A'
  return first + field.slice(1)
}

/** A token the plugin wrote, for a session holding `user: 'ada'`. */
async function issuedToken (t: Test): Promise<string> {
  const app = await buildApp(t)
  addSessionRoutes(app)
  return cookieValue(await app.inject('/write'))!
}

/** An app whose `/read` handler records that it ran, and the debug log lines it wrote. */
async function readerApp (t: Test): Promise<{ read: (cookie: string | undefined) => Promise<void>, logs: LogCapture }> {
  const logs = new LogCapture()
  const app = await buildApp(t, {}, logs.server)
  addSessionRoutes(app)
  const read = async (cookie: string | undefined): Promise<void> => {
    const headers: Record<string, string> = cookie === undefined ? {} : { cookie }
    const response = await app.inject({ url: '/read', headers })
    t.equal(response.statusCode, 200, 'answered 200')
    t.same(response.json(), { isNew: true, user: null }, 'with a fresh, empty session')
    if (cookie === undefined || !/(^|; )session=[^;]/.test(cookie)) t.same(setCookies(response), [], 'and no cookie')
    else t.match(setCookies(response), [/^session=; Max-Age=0;/], 'and the refused cookie is cleared')
  }
  return { read, logs }
}

t.test('no cookie, or an empty one, is a fresh session and nothing to log', async (t) => {
  const { read, logs } = await readerApp(t)
  await read(undefined)
  await read('session=')
  await read('other=1')
  t.same(logs.withCode('FST_SESSION_COOKIE_REJECTED'), [])
})

t.test('a token with any of its eight fields changed is a fresh session, logged at debug', async (t) => {
  const token = await issuedToken(t)
  const { read, logs } = await readerApp(t)
  for (let i = 0; i < 8; i++) {
    const fields = tokenFields(token)
    fields[i] = flip(fields[i]!)
    t.not(fields.join('*'), token, `the ${FIELDS[i]} differs`)
    await read(`session=${fields.join('*')}`)
  }
  const rejected = logs.withCode('FST_SESSION_COOKIE_REJECTED')
  t.equal(rejected.length, 8)
  t.ok(rejected.every((line) => line['level'] === 20), 'every line is at debug level')
})

t.test('a token with any of its fields emptied is a fresh session', async (t) => {
  const token = await issuedToken(t)
  const { read, logs } = await readerApp(t)
  for (const i of [0, 2, 3, 4, 5, 6, 7]) {
    const fields = tokenFields(token)
    fields[i] = ''
    await read(`session=${fields.join('*')}`)
  }
  t.equal(logs.withCode('FST_SESSION_COOKIE_REJECTED').length, 7)
})

t.test('a truncated token, a shortened iv or mac, a wrong prefix, a bad id or expiration, or garbage is a fresh session', async (t) => {
  const token = await issuedToken(t)
  const fields = tokenFields(token)
  const replace = (i: number, value: string): string => fields.map((field, j) => (j === i ? value : field)).join('*')
  const bad = [
    token.slice(0, -10),
    token.slice(0, token.lastIndexOf('*')),
    `${token}*extra`,
    replace(0, 'Fe26.1'),
    replace(1, 'no-dashes'),
    replace(3, fields[3]!.slice(0, 12)),
    replace(5, '0123'),
    replace(5, 'soon'),
    replace(7, fields[7]!.slice(0, 20)),
    'Fe26.2',
    'not a token at all',
    '********',
    encodeURIComponent('{"user":"ada"}'),
    'Fe26.2**%%%*!!!*???*1*x*y'
  ]
  const { read, logs } = await readerApp(t)
  for (const value of bad) await read(`session=${value}`)
  t.equal(logs.withCode('FST_SESSION_COOKIE_REJECTED').length, bad.length)
})

t.test('a token sealed with a foreign secret is a fresh session', async (t) => {
  const { read, logs } = await readerApp(t)
  await read(`session=${await ironSeal(sessionPayload({ user: 'mallory' }), OTHER_SECRET)}`)
  const foreignApp = await buildApp(t, { secret: OTHER_SECRET })
  addSessionRoutes(foreignApp)
  await read(`session=${cookieValue(await foreignApp.inject('/write'))!}`)
  t.match(logs.withCode('FST_SESSION_COOKIE_REJECTED'), [{ reason: String }, { reason: String }])
})

t.test('a valid seal over a payload that is not JSON, or not a session, is a fresh session', async (t) => {
  const now = Date.now()
  const notJson = await ironSeal(null, undefined, { encode: () => 'user=ada' })
  const shapes: unknown[] = [
    42,
    'a string',
    null,
    [now, now, {}],
    { t: now, d: {} },
    { c: now, d: {} },
    { c: now, t: String(now), d: {} },
    { c: now + 0.5, t: now, d: {} },
    { c: now, t: now },
    { c: now, t: now, d: null },
    { c: now, t: now, d: ['ada'] },
    { c: now, t: now, d: 'ada' }
  ]
  const { read, logs } = await readerApp(t)
  await read(`session=${notJson}`)
  for (const shape of shapes) await read(`session=${await ironSeal(shape)}`)
  const reasons = logs.withCode('FST_SESSION_COOKIE_REJECTED').map((line) => line['reason'])
  t.equal(reasons.length, shapes.length + 1)
  t.equal(new Set(reasons.slice(1)).size, 1, 'every wrong shape is rejected for the same reason')
  t.not(reasons[0], reasons[1], 'a payload that is not JSON is told apart from one of the wrong shape')
})

t.test('a valid MAC over a ciphertext that does not decrypt is a fresh session', async (t) => {
  const fields = tokenFields(await issuedToken(t))
  const { read, logs } = await readerApp(t)
  fields[4] = 'AAAAAAAA'
  await read(`session=${await withValidMac(fields)}`)
  fields[4] = ''
  await read(`session=${await withValidMac(fields)}`)
  t.equal(logs.withCode('FST_SESSION_COOKIE_REJECTED').length, 2)
})

t.test('a huge cookie header is a fresh session', async (t) => {
  const token = await issuedToken(t)
  const { read, logs } = await readerApp(t)
  await read(`session=${'A'.repeat(64 * 1024)}`)
  await read(`session=${token.replace('*', '*'.repeat(10_000))}`)
  await read(`${'x=1; '.repeat(2000)}session=${'*'.repeat(8000)}`)
  t.equal(logs.withCode('FST_SESSION_COOKIE_REJECTED').length, 3)
})

t.test('a bad cookie never reaches the handler as an exception, whatever the handler does with the session', async (t) => {
  const app = await buildApp(t)
  app.get('/use', async (request) => {
    const before = { isNew: request.session.isNew, has: request.session.has('user'), flashes: request.session.flashes() }
    request.session.set('user', 'new')
    return before
  })
  const response = await app.inject({ url: '/use', cookies: { session: 'Fe26.2**x*y*z**a*b' } })
  t.equal(response.statusCode, 200)
  t.same(response.json(), { isNew: true, has: false, flashes: [] })
  t.equal(setCookies(response).length, 1, 'the new session replaces the bad cookie')
})

t.test('a sealed cookie whose MAC field is spelt differently is a fresh session', async (t) => {
  const app = await buildApp(t)
  addSessionRoutes(app)
  const token = cookieValue(await app.inject('/write'))!
  const last = token.at(-1)!
  const base = token.slice(0, token.length - 1)
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
  // The 43rd character carries 4 bits and 2 of padding: flipping a padding bit decodes to the same MAC.
  const sameBits = alphabet[alphabet.indexOf(last) ^ 1]!
  const respellings = [`${token}!`, `${token}=`, `${token}.`, `${token}~`, `${base}${sameBits}`]
  for (const value of respellings) {
    const read = await app.inject({ url: '/read', headers: { cookie: `session=${value}` } })
    t.same(read.json(), { isNew: true, user: null }, `session=…${value.slice(-6)}`)
  }
})
