import { createCipheriv, createHmac, pbkdf2Sync } from 'node:crypto'
import { defaults } from 'iron-webcrypto'
import t from 'tap'
import { IronSealer, SALT_LENGTH } from '../lib/iron-token.js'
import { addSessionRoutes, buildApp, cookieValue, OTHER_SECRET, SECRET } from './helpers/app.js'
import { ironSeal, ironUnseal, sessionPayload, tokenFields, withValidMac } from './helpers/iron.js'

t.test('a token the plugin writes unseals with iron-webcrypto and the same secret', async (t) => {
  const app = await buildApp(t)
  app.get('/login', async (request) => {
    request.session.set('user', { id: '42', name: 'Ada Lovelace', roles: ['admin'], note: 'élan ✓' })
    request.session.set('visits', 3)
    return { ok: true }
  })
  const before = Date.now()
  const token = cookieValue(await app.inject('/login'))!
  const after = Date.now()
  const payload = await ironUnseal(token) as { c: number, t: number, d: unknown }
  t.same(payload.d, { user: { id: '42', name: 'Ada Lovelace', roles: ['admin'], note: 'élan ✓' }, visits: 3 })
  t.ok(payload.c >= before && payload.c <= after, 'c is the creation time in ms')
  t.equal(payload.t, payload.c, 'a new session is issued when it is created')
  await t.rejects(ironUnseal(token, OTHER_SECRET), 'another secret does not unseal it')
})

t.test('a token iron-webcrypto seals from the same payload shape is accepted as a session', async (t) => {
  const app = await buildApp(t)
  addSessionRoutes(app)
  app.get('/all', async (request) => ({ user: request.session.get('user'), visits: request.session.get('visits') }))
  const token = await ironSeal(sessionPayload({ user: { id: '7', name: 'Grace' }, visits: 12 }))
  const response = await app.inject({ url: '/all', cookies: { session: token } })
  t.equal(response.statusCode, 200)
  t.same(response.json(), { user: { id: '7', name: 'Grace' }, visits: 12 })
})

t.test('iron-webcrypto tokens with an expiration in the future or a password id are accepted', async (t) => {
  const app = await buildApp(t)
  addSessionRoutes(app)
  const withTtl = await ironSeal(sessionPayload({ user: 'ttl' }), SECRET, { ttl: 60_000 })
  t.match(withTtl, /\*\d{13}\*[^*]+\*[^*]+$/, 'the token carries an expiration')
  t.same((await app.inject({ url: '/read', cookies: { session: withTtl } })).json(), { isNew: false, user: 'ttl' })

  const token = await ironSeal(sessionPayload({ user: 'id' }), SECRET)
  const { seal, defaults } = await import('iron-webcrypto')
  const withId = await seal(sessionPayload({ user: 'id' }), { id: 'v2', secret: SECRET }, defaults)
  t.match(withId, /^Fe26\.2\*v2\*/)
  t.not(withId, token)
  t.same((await app.inject({ url: '/read', cookies: { session: withId } })).json(), { isNew: false, user: 'id' })
})

t.test('a session round-trips: iron-webcrypto seals, the plugin changes it, iron-webcrypto reads the change', async (t) => {
  const app = await buildApp(t)
  app.get('/visit', async (request) => {
    request.session.set('visits', (request.session.get('visits') as number) + 1)
    return { ok: true }
  })
  const created = Date.now() - 60_000
  const token = await ironSeal(sessionPayload({ visits: 1 }, { created }))
  const next = cookieValue(await app.inject({ url: '/visit', cookies: { session: token } }))!
  const payload = await ironUnseal(next) as { c: number, t: number, d: unknown }
  t.same(payload.d, { visits: 2 })
  t.equal(payload.c, created, 'the creation time is carried over')
  t.ok(payload.t > created, 'the issue time is now')
})

/** JSON texts whose length falls on each side of every block boundary up to five blocks, and a few long ones. */
const JSON_LENGTHS = [
  ...Array.from({ length: 6 }, (_, blocks) => [blocks * 16 - 1, blocks * 16, blocks * 16 + 1]).flat().filter((n) => n >= 8),
  1023, 1024, 1025, 2800
]
const jsonOf = (length: number, mark: string): string => JSON.stringify({ p: mark.padEnd(length - 8, 'x') })

t.test('for every length class, tokens the sealer writes unseal with iron-webcrypto, and tokens iron-webcrypto writes unseal with the sealer, in turn', async (t) => {
  const sealer = new IronSealer([SECRET])
  const now = Date.now()
  for (const length of JSON_LENGTHS) {
    const ours = jsonOf(length, `ours ${length}`)
    t.equal(ours.length, length)
    const token = sealer.seal(ours, now + 60_000)
    t.equal(JSON.stringify(await ironUnseal(token)), ours, `${length} bytes: iron-webcrypto reads the sealer's token`)
    const theirs = jsonOf(length, `theirs ${length}`)
    const foreign = await ironSeal(JSON.parse(theirs))
    t.match(sealer.unseal(foreign, now), { json: theirs, secretIndex: 0 }, `${length} bytes: the sealer reads iron-webcrypto's token`)
    // Same salts as the sealer's own: the path that keeps its cipher contexts.
    const fields = tokenFields(token)
    // iron-webcrypto takes a fixed salt (its generateKey option) though its seal options do not name it.
    const ownSalts = {
      encryption: { ...defaults.encryption, salt: fields[2]! },
      integrity: { ...defaults.integrity, salt: fields[6]! }
    }
    const sameSalts = await ironSeal(JSON.parse(theirs), SECRET, ownSalts)
    t.equal(tokenFields(sameSalts)[2], fields[2])
    t.match(sealer.unseal(sameSalts, now), { json: theirs }, `${length} bytes: and its token with the sealer's own salts`)
    t.match(sealer.unseal(token, now), { json: ours }, 'the sealer reads its own token after those')
  }
})

t.test('each secret seals with one pair of short salts derived from it; tokens with the 64-character salts of before still unseal', async (t) => {
  const now = Date.now()
  const fields = tokenFields(new IronSealer([SECRET]).seal('{}', now + 60_000))
  t.equal(SALT_LENGTH, 16)
  t.match(fields[2], /^[0-9a-f]{16}$/, 'the encryption salt: 16 hex characters')
  t.match(fields[6], /^[0-9a-f]{16}$/, 'the integrity salt too')
  t.not(fields[2], fields[6], 'one salt per purpose')
  const again = tokenFields(new IronSealer([SECRET]).seal('{}', now + 60_000))
  t.same([again[2], again[6]], [fields[2], fields[6]], 'every instance with the secret derives the same salts')
  const other = tokenFields(new IronSealer([OTHER_SECRET]).seal('{}', now + 60_000))
  t.not(other[2], fields[2], 'another secret, other salts')
  t.same(await ironUnseal(new IronSealer([SECRET]).seal('{"c":1}', now + 60_000)), { c: 1 }, 'iron-webcrypto reads the short salts')

  // What the sealer wrote before its salts were shortened: the whole hex HMAC of each purpose.
  const longSalt = (purpose: string): string => createHmac('sha256', SECRET).update(`fastify-sessions ${purpose} salt`).digest('hex')
  // iron-webcrypto takes a fixed salt (its generateKey option) though its seal options do not name it.
  const longSalts = {
    encryption: { ...defaults.encryption, salt: longSalt('encryption') },
    integrity: { ...defaults.integrity, salt: longSalt('integrity') }
  }
  const before = await ironSeal({ c: 2 }, SECRET, longSalts)
  t.equal(tokenFields(before)[2]!.length, 64)
  t.equal(tokenFields(before)[2]!.slice(0, SALT_LENGTH), fields[2], 'the short salt is the start of the long one')
  t.match(new IronSealer([SECRET]).unseal(before, now), { json: '{"c":2}' }, 'a token with the long salts is accepted')
})

const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'

t.test('a tampered token is refused by the sealer as by iron-webcrypto, whichever salts it has', async (t) => {
  const sealer = new IronSealer([SECRET])
  const now = Date.now()
  const tokens = [sealer.seal(jsonOf(40, 'a'), now + 60_000), await ironSeal({ p: 'b' })]
  for (const token of tokens) {
    const fields = tokenFields(token)
    for (const i of [1, 2, 3, 4, 5, 6, 7]) {
      for (const at of [0, Math.floor(fields[i]!.length / 2), fields[i]!.length - 1]) {
        const changed = [...fields]
        const field = changed[i]!
        // The top bit of a base64url character is always data, never padding.
        changed[i] = field.slice(0, at) + BASE64URL[BASE64URL.indexOf(field[at]!) ^ 32]! + field.slice(at + 1)
        const tampered = changed.join('*')
        t.equal(sealer.unseal(tampered, now), undefined, `field ${i}, character ${at}: refused by the sealer`)
        await t.rejects(ironUnseal(tampered), `field ${i}, character ${at}: refused by iron-webcrypto`)
      }
    }
    t.ok(sealer.unseal(token, now), 'the untouched token is still accepted')
  }
})

t.test('a valid MAC over ciphertext with wrong padding is refused by the sealer as by iron-webcrypto', async (t) => {
  const sealer = new IronSealer([SECRET])
  const now = Date.now()
  const own = tokenFields(sealer.seal('{}', now + 60_000))
  const foreign = tokenFields(await ironSeal({}))
  for (const fields of [own, foreign]) {
    const key = pbkdf2Sync(SECRET, fields[2]!, 1, 32, 'sha1')
    const iv = Buffer.from(fields[3]!, 'base64url')
    const lasts = [[0], [17], [3, 2, 3], [5, 4, 4, 4]]
    for (const last of lasts) {
      const plain = Buffer.alloc(32, 0x20)
      plain.set(last, 32 - last.length)
      const changed = [...fields]
      changed[4] = createCipheriv('aes-256-cbc', key, iv).setAutoPadding(false).update(plain).toString('base64url')
      const token = await withValidMac(changed)
      t.equal(sealer.unseal(token, now), undefined, `padding ending ${last.join(',')}: refused by the sealer`)
      await t.rejects(ironUnseal(token), `padding ending ${last.join(',')}: refused by iron-webcrypto`)
    }
    const right = [...fields]
    const plain = Buffer.alloc(48, 16)
    plain.write('{"c":1,"t":1,"d":{}}'.padEnd(32, ' '))
    right[4] = createCipheriv('aes-256-cbc', key, iv).setAutoPadding(false).update(plain).toString('base64url')
    const token = await withValidMac(right)
    t.same(await ironUnseal(token), { c: 1, t: 1, d: {} }, 'a full block of padding is right for iron-webcrypto')
    t.match(sealer.unseal(token, now), { json: '{"c":1,"t":1,"d":{}}'.padEnd(32, ' ') }, 'and for the sealer')
  }
})
