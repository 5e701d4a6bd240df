import { RedisStore } from 'connect-redis'
import connectPgSimple from 'connect-pg-simple'
import session, { MemoryStore } from 'express-session'
import createMemoryStore from 'memorystore'
import createFileStore from 'session-file-store'
import { expect, test } from 'tstyche'
import { ExpressStoreArchive, FST_SESSION_ARCHIVE_UNAVAILABLE, type Archive } from '../lib/index.js'

test('express-session stores are accepted as they are typed', () => {
  expect(new ExpressStoreArchive(new MemoryStore())).type.toBeAssignableTo<Archive>()
  expect(new ExpressStoreArchive(new RedisStore({ client: {} }))).type.not.toRaiseError()
  expect(new ExpressStoreArchive(new (connectPgSimple(session))())).type.not.toRaiseError()
  expect(new ExpressStoreArchive(new (createMemoryStore(session))({}))).type.not.toRaiseError()
  expect(new ExpressStoreArchive(new (createFileStore(session))())).type.not.toRaiseError()
  expect(new ExpressStoreArchive(new MemoryStore(), { field: 'sessions' })).type.not.toRaiseError()
})

test('a store of promises only is accepted too', () => {
  const store = {
    get: async (_sid: string): Promise<unknown> => undefined,
    set: async (_sid: string, _session: object): Promise<void> => {},
    destroy: async (_sid: string): Promise<void> => {}
  }
  expect(new ExpressStoreArchive(store)).type.not.toRaiseError()
})

test('what is not an express-session store, or a wrong option, is refused', () => {
  expect(new ExpressStoreArchive({ get () {}, set () {} })).type.toRaiseError()
  expect(new ExpressStoreArchive(new MemoryStore(), { field: 1 })).type.toRaiseError()
  expect(new ExpressStoreArchive(new MemoryStore(), { ttl: 60 })).type.toRaiseError()
})

test('error constructors carry their arguments and an error with code and status', () => {
  expect(new FST_SESSION_ARCHIVE_UNAVAILABLE('down')).type.toHaveProperty('code')
  expect(new FST_SESSION_ARCHIVE_UNAVAILABLE('down').statusCode).type.toBe<number>()
  expect(new FST_SESSION_ARCHIVE_UNAVAILABLE('down')).type.toBeAssignableTo<Error>()
  expect(new FST_SESSION_ARCHIVE_UNAVAILABLE()).type.toRaiseError()
})
