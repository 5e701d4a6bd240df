import type { FastifyInstance } from 'fastify'
import type { Test } from 'tap'
import t from 'tap'
import { SESSION_KEY } from '../lib/archive-mode.js'
import type { Archive } from '../lib/archives/archive.js'
import { defineSessionType, type FastifySessionsOptions } from '../lib/index.js'
import { buildApp, LogCapture } from './helpers/app.js'
import { ironSeal, sessionPayload } from './helpers/iron.js'
import { carry, roundTrip, sessionModes, type SessionModeCase } from './helpers/session-modes.js'

class Money {
  constructor (readonly cents: number) {}
}

/** A registration that counts how often its decode runs. */
function countingMoney (): { type: ReturnType<typeof defineSessionType<Money, { cents: number }>>, decoded: () => number } {
  let decoded = 0
  const type = defineSessionType({
    name: 'Money',
    type: Money,
    encode: (value) => ({ cents: value.cents }),
    decode: (json) => {
      decoded++
      return new Money(json.cents)
    }
  })
  return { type, decoded: () => decoded }
}

function assertNoPollution (t: Test): void {
  for (const name of ['polluted', 'isAdmin']) {
    t.equal(({} as Record<string, unknown>)[name], undefined, `Object.prototype has no "${name}"`)
    t.notOk(Object.hasOwn(Object.prototype, name))
  }
}

interface Planted {
  app: FastifyInstance
  logs: LogCapture
  /** Stores `d` as the session's stored data, the way a forged or old session would hold it, and returns its cookies. */
  plant: (d: Record<string, unknown>) => Promise<Record<string, string>>
}

/** An app in `mode` whose stored sessions a test writes itself: sealed with the secret, or written into the archive. */
async function plantable (t: Test, mode: SessionModeCase, options: Partial<FastifySessionsOptions> = {}): Promise<Planted> {
  const { options: modeOptions, archive } = await mode.setup(t)
  const logs = new LogCapture()
  const app = await buildApp(t, { ...modeOptions, ...options }, logs.server)
  app.post('/seed', async (request) => {
    request.session.set('seed', true)
    return { id: request.session.id }
  })
  const plant = async (d: Record<string, unknown>): Promise<Record<string, string>> => {
    if (archive === undefined) return { session: await ironSeal(sessionPayload(d)) }
    const seeded = await app.inject({ method: 'POST', url: '/seed' })
    await (archive as Archive).set(seeded.json().id, SESSION_KEY, JSON.stringify(sessionPayload(d)))
    return carry(mode, seeded)
  }
  return { app, logs, plant }
}

for (const mode of sessionModes) {
  t.test(`${mode.name}: values shaped like tags stay plain data and no reviver runs`, async (t) => {
    const { type, decoded } = countingMoney()
    const lookalikes = {
      top: { '~': 'Money', v: { cents: 1 } },
      wrapper: { '~': { '~': 'Money', v: { cents: 1 } } },
      nested: { wallet: [{ '~': 'Date', v: 0 }], when: new Date(5) },
      escape: { '~': 'Object', v: { '~': 'Money', v: { cents: 1 } } }
    }
    const read = await roundTrip(t, mode, lookalikes, { types: [type] })
    t.same(read['top'], lookalikes.top)
    t.same(read['wrapper'], lookalikes.wrapper)
    t.same((read['nested'] as { wallet: unknown }).wallet, [{ '~': 'Date', v: 0 }])
    t.ok((read['nested'] as { when: unknown }).when instanceof Date, 'a real Date next to them is still revived')
    t.same(read['escape'], lookalikes.escape)
    t.equal(decoded(), 0, 'the Money reviver never ran')
  })

  t.test(`${mode.name}: "__proto__", "constructor" and "prototype" keys set by the app come back as plain keys`, async (t) => {
    const hostile = JSON.parse('{"__proto__": {"polluted": true, "isAdmin": true}, "constructor": {"prototype": {"polluted": true}}, "prototype": {"isAdmin": true}}')
    const read = await roundTrip(t, mode, {
      plain: hostile,
      tagged: { ...JSON.parse('{"__proto__": {"isAdmin": true}}'), when: new Date(0) },
      inMap: new Map([['__proto__', hostile]])
    })
    const plain = read['plain'] as Record<string, unknown>
    t.same(Object.keys(plain), ['__proto__', 'constructor', 'prototype'])
    t.equal(Object.getPrototypeOf(plain), Object.prototype, 'its prototype is untouched')
    t.same(Object.getOwnPropertyDescriptor(plain, '__proto__')?.value, { polluted: true, isAdmin: true })
    t.equal(plain['isAdmin'], undefined)
    const tagged = read['tagged'] as Record<string, unknown>
    t.same(Object.keys(tagged), ['__proto__', 'when'])
    t.equal(Object.getPrototypeOf(tagged), Object.prototype)
    t.equal(tagged['isAdmin'], undefined)
    t.same(Object.keys((read['inMap'] as Map<string, object>).get('__proto__')!), ['__proto__', 'constructor', 'prototype'])
    assertNoPollution(t)
  })

  t.test(`${mode.name}: stored data with "__proto__", "constructor" and "prototype" keys pollutes nothing`, async (t) => {
    const { app, plant } = await plantable(t, mode)
    let read: unknown
    app.get('/read', async (request) => {
      read = { plain: request.session.get('plain'), tagged: request.session.get('tagged') }
      return { isNew: request.session.isNew, keys: Object.keys(request.session.get('plain') as object) }
    })
    const d = JSON.parse(`{
      "plain": {"__proto__": {"polluted": true}, "constructor": {"prototype": {"polluted": true}}, "prototype": {"isAdmin": true}},
      "tagged": {"~": {"__proto__": {"isAdmin": true}, "constructor": {"~": "Date", "v": 0}, "prototype": {"~": "Object", "v": {"__proto__": {"polluted": true}}}}},
      "__proto__": {"isAdmin": true}
    }`)
    const response = await app.inject({ url: '/read', cookies: await plant(d) })
    t.same(response.json(), { isNew: false, keys: ['__proto__', 'constructor', 'prototype'] })
    const { plain, tagged } = read as { plain: Record<string, unknown>, tagged: Record<string, unknown> }
    t.equal(plain['polluted'], undefined)
    t.same(Object.keys(tagged), ['__proto__', 'constructor', 'prototype'])
    t.equal(Object.getPrototypeOf(tagged), Object.prototype)
    t.ok(tagged['constructor'] instanceof Date, 'a "constructor" key holds its own value')
    t.same(Object.keys(tagged['prototype'] as object), ['__proto__'])
    t.equal(tagged['isAdmin'], undefined)
    assertNoPollution(t)
  })

  t.test(`${mode.name}: a stored value naming a type not registered gives a fresh session and a warning`, async (t) => {
    const { type, decoded } = countingMoney()
    const { app, logs, plant } = await plantable(t, mode, { types: [type] })
    app.get('/read', async (request) => ({ isNew: request.session.isNew, user: request.session.get('user') ?? null }))
    for (const name of ['Nope', '__proto__', 'constructor', 'toString', 'Function', 'eval', 'money']) {
      const response = await app.inject({
        url: '/read',
        cookies: await plant({ user: 'mallory', wallet: { '~': [{ '~': name, v: 'return process' }] } })
      })
      t.equal(response.statusCode, 200, name)
      t.same(response.json(), { isNew: true, user: null }, `${name}: a fresh session`)
      t.match(logs.withCode('FST_SESSION_UNKNOWN_TYPE').at(-1), { level: 40, type: name }, `${name}: a warning naming the type`)
    }
    t.equal(logs.withCode('FST_SESSION_UNKNOWN_TYPE').length, 7)
    t.equal(decoded(), 0, 'no reviver ran')
    assertNoPollution(t)
  })

  t.test(`${mode.name}: a session holding an instance whose class is no longer registered is read as a fresh one`, async (t) => {
    const { type } = countingMoney()
    const { options } = await mode.setup(t)
    const before = await buildApp(t, { ...options, types: [type] })
    before.post('/pay', async (request) => {
      request.session.set('user', 'ada')
      request.session.set('wallet', new Money(500))
      return { ok: true }
    })
    const cookies = carry(mode, await before.inject({ method: 'POST', url: '/pay' }))

    // The same secret and archive, after a deploy that dropped the Money registration.
    const logs = new LogCapture()
    const after = await buildApp(t, options, logs.server)
    after.get('/read', async (request) => ({ isNew: request.session.isNew, user: request.session.get('user') ?? null }))
    after.post('/write', async (request) => {
      request.session.set('user', 'grace')
      return { id: request.session.id ?? null }
    })
    const response = await after.inject({ url: '/read', cookies })
    t.equal(response.statusCode, 200)
    t.same(response.json(), { isNew: true, user: null })
    t.same(logs.withCode('FST_SESSION_UNKNOWN_TYPE').map((line) => line['type']), ['Money'])
    t.equal(logs.withCode('FST_SESSION_UNKNOWN_TYPE')[0]!['level'], 40, 'logged as a warning')

    const written = await after.inject({ method: 'POST', url: '/write', cookies })
    t.equal(written.statusCode, 200, 'the fresh session can be written')
    const next = await after.inject({ url: '/read', cookies: { ...cookies, ...carry(mode, written) } })
    t.same(next.json(), { isNew: false, user: 'grace' }, 'and read back')
  })
}
