import Fastify from 'fastify'
import { expect, test } from 'tstyche'
import fastifySessions, { defineSessionType, fastifySessions as named, type CookieOverflow, type Session, type SessionType } from '../lib/index.js'

class Money {
  constructor (readonly cents: number, readonly currency: string) {}
}

declare module '../lib/index.js' {
  interface SessionData {
    user: { id: string, name: string }
    visits: number
    lastSeen: Date
    scores: Map<string, number>
    tags: Set<string>
    balance: bigint
    wallet: Money
    history: Array<{ at: Date, url: URL }>
  }
}

const app = Fastify()

test('the plugin registers with its options, as default and named export', () => {
  expect(app.register(fastifySessions, { secret: 'x'.repeat(32) })).type.not.toRaiseError()
  expect(app.register(named, { secret: ['x'.repeat(32), 'y'.repeat(32)], cookieName: 'sid', maxAge: 60 })).type.not.toRaiseError()
  expect(app.register(fastifySessions, { cookieName: 'sid' })).type.toRaiseError()
  expect(app.register(fastifySessions, { secret: 'x'.repeat(32), mode: 'nowhere' })).type.toRaiseError()
  expect(app.register(fastifySessions, { secret: 'x'.repeat(32), cookie: { sameSite: 'sideways' } })).type.toRaiseError()
})

test('persistent, revocable, maxSize, cookieSize.overflow and cookieSize.maxTotal take their types only', () => {
  const secret = 'x'.repeat(32)
  expect(app.register(fastifySessions, { secret, cookie: { persistent: false }, revocable: true, maxSize: 1 << 20, cookieSize: { overflow: 'error' } })).type.not.toRaiseError()
  expect(app.register(fastifySessions, { secret, cookie: { persistent: 'no' } })).type.toRaiseError()
  expect(app.register(fastifySessions, { secret, revocable: 1 })).type.toRaiseError()
  expect(app.register(fastifySessions, { secret, maxSize: '64kb' })).type.toRaiseError()
  expect(app.register(fastifySessions, { secret, cookieSize: { overflow: 'chunk', maxTotal: 12288 } })).type.not.toRaiseError()
  expect(app.register(fastifySessions, { secret, cookieSize: { overflow: 'archive' } })).type.not.toRaiseError()
  expect(app.register(fastifySessions, { secret, cookieSize: { overflow: 'split' } })).type.toRaiseError()
  expect(app.register(fastifySessions, { secret, cookieSize: { maxTotal: '8k' } })).type.toRaiseError()
  expect<CookieOverflow>().type.toBe<'error' | 'archive' | 'chunk'>()
})

test("other plugins' option names do not compile", () => {
  const secret = 'x'.repeat(32)
  expect(app.register(fastifySessions, { secret, store: {} })).type.toRaiseError()
  expect(app.register(fastifySessions, { secret, saveUninitialized: false })).type.toRaiseError()
  expect(app.register(fastifySessions, { secret, cookie: { maxAge: 3600 } })).type.toRaiseError()
  expect(app.register(fastifySessions, { password: secret })).type.toRaiseError()
})

test('request.session is a Session, typed by SessionData', () => {
  app.get('/', async (request) => {
    expect(request.session).type.toBe<Session>()
    expect(request.session.get('user')).type.toBe<{ id: string, name: string } | undefined>()
    expect(request.session.get('visits')).type.toBe<number | undefined>()
    expect(request.session.get('nope')).type.toRaiseError()
    expect(request.session.set('visits', 1)).type.not.toRaiseError()
    expect(request.session.set('visits', '1')).type.toRaiseError()
    expect(request.session.set('user', { id: '1' })).type.toRaiseError()
    expect(request.session.regenerate(['user'])).type.toBe<Promise<void>>()
    expect(request.session.regenerate(['nope'])).type.toRaiseError()
    expect(request.session.flashes()).type.toBe<string[]>()
    expect(request.session.isNew).type.toBe<boolean>()
    return 'ok'
  })
})

test('values beyond JSON type-check on get and set', () => {
  app.get('/rich', async (request) => {
    expect(request.session.get('lastSeen')).type.toBe<Date | undefined>()
    expect(request.session.get('scores')).type.toBe<Map<string, number> | undefined>()
    expect(request.session.get('tags')).type.toBe<Set<string> | undefined>()
    expect(request.session.get('balance')).type.toBe<bigint | undefined>()
    expect(request.session.get('wallet')).type.toBe<Money | undefined>()
    expect(request.session.get('history')).type.toBe<Array<{ at: Date, url: URL }> | undefined>()
    expect(request.session.set('lastSeen', new Date())).type.not.toRaiseError()
    expect(request.session.set('scores', new Map([['ada', 1]]))).type.not.toRaiseError()
    expect(request.session.set('tags', new Set(['a']))).type.not.toRaiseError()
    expect(request.session.set('balance', 2n ** 70n)).type.not.toRaiseError()
    expect(request.session.set('wallet', new Money(1, 'EUR'))).type.not.toRaiseError()
    expect(request.session.set('history', [{ at: new Date(), url: new URL('https://example.com') }])).type.not.toRaiseError()
    expect(request.session.set('lastSeen', '2024-01-01')).type.toRaiseError()
    expect(request.session.set('scores', new Map([['ada', '1']]))).type.toRaiseError()
    expect(request.session.set('balance', 1)).type.toRaiseError()
    return 'ok'
  })
})

test('defineSessionType infers the instance and encoded types', () => {
  const money = defineSessionType({
    name: 'Money',
    type: Money,
    encode: (value) => {
      expect(value).type.toBe<Money>()
      return { cents: value.cents, currency: value.currency }
    },
    decode: (json) => {
      expect(json).type.toBe<{ cents: number, currency: string }>()
      return new Money(json.cents, json.currency)
    }
  })
  expect(money).type.toBe<SessionType<Money, { cents: number, currency: string }>>()
  expect(defineSessionType({ name: 'Money', type: Money, encode: (value) => value.cents, decode: (cents) => String(cents) })).type.toRaiseError()
  expect(app.register(fastifySessions, { secret: 'x'.repeat(32), types: [money] })).type.not.toRaiseError()
  expect(app.register(fastifySessions, { secret: 'x'.repeat(32), types: [money, defineSessionType({ name: 'Url', type: URL, encode: (url) => url.href, decode: (href) => new URL(href) })] })).type.not.toRaiseError()
  expect(app.register(fastifySessions, { secret: 'x'.repeat(32), types: [{ name: 'Money', type: Money }] })).type.toRaiseError()
  expect(app.register(fastifySessions, { secret: 'x'.repeat(32), types: money })).type.toRaiseError()
})

test('routes choose their session in config', () => {
  expect(app.get('/health', { config: { session: false } }, async () => 'ok')).type.not.toRaiseError()
  expect(app.get('/c', { config: { session: 'cookie' } }, async () => 'ok')).type.not.toRaiseError()
  expect(app.get('/x', { config: { session: 'elsewhere' } }, async () => 'ok')).type.toRaiseError()
})
