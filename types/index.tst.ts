import Fastify from 'fastify'
import { expect, test } from 'tstyche'
import fastifySessions, { fastifySessions as named, type Session } from '../lib/index.js'

declare module '../lib/index.js' {
  interface SessionData {
    user: { id: string, name: string }
    visits: number
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

test('routes choose their session in config', () => {
  expect(app.get('/health', { config: { session: false } }, async () => 'ok')).type.not.toRaiseError()
  expect(app.get('/c', { config: { session: 'cookie' } }, async () => 'ok')).type.not.toRaiseError()
  expect(app.get('/x', { config: { session: 'elsewhere' } }, async () => 'ok')).type.toRaiseError()
})
