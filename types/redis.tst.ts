import { Cluster as Cluster5, Redis as Redis5 } from 'ioredis'
import { Cluster as Cluster6, Redis as Redis6 } from 'ioredis6'
import { Cluster as ValkeyCluster, Valkey } from 'iovalkey'
import { expect, test } from 'tstyche'
import { RedisArchive, type RedisClient } from '../lib/index.js'

const client = new Redis5()

test('a client of ioredis 5, ioredis 6 or iovalkey is a RedisClient', () => {
  expect<Redis5>().type.toBeAssignableTo<RedisClient>()
  expect<Redis6>().type.toBeAssignableTo<RedisClient>()
  expect<Valkey>().type.toBeAssignableTo<RedisClient>()
  expect(new RedisArchive({ client: new Redis6({ enableOfflineQueue: false }) })).type.not.toRaiseError()
  expect(new RedisArchive({ client: new Valkey({ enableOfflineQueue: false }), prefix: 'app:', readyTimeoutMs: 2000 })).type.not.toRaiseError()
})

test('a Cluster client of ioredis 5, ioredis 6 or iovalkey is a RedisClient', () => {
  expect<Cluster5>().type.toBeAssignableTo<RedisClient>()
  expect<Cluster6>().type.toBeAssignableTo<RedisClient>()
  expect<ValkeyCluster>().type.toBeAssignableTo<RedisClient>()
  expect(new RedisArchive({ client: new Cluster5([{ host: '127.0.0.1', port: 7000 }], { enableOfflineQueue: false }), prefix: 'app:' })).type.not.toRaiseError()
})

test('something without the commands the archive uses is not a RedisClient', () => {
  expect<{ get: (key: string) => Promise<string | null> }>().type.not.toBeAssignableTo<RedisClient>()
  expect(new RedisArchive({ client: {} })).type.toRaiseError()
})

test('a client is given alone: never with url, lazyConnect or commandTimeoutMs', () => {
  expect(new RedisArchive({ client, url: 'redis://127.0.0.1:6379' })).type.toRaiseError()
  expect(new RedisArchive({ client, lazyConnect: true })).type.toRaiseError()
  expect(new RedisArchive({ client, commandTimeoutMs: 500 })).type.toRaiseError()
  expect(new RedisArchive({})).type.toRaiseError()
})

test('url is a string: an environment variable needs its fallback, as the JSDoc example shows', () => {
  expect(new RedisArchive({ url: process.env['REDIS_URL'] })).type.toRaiseError()
  expect(new RedisArchive({ url: process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379' })).type.not.toRaiseError()
  expect(new RedisArchive({ url: 'redis://127.0.0.1:6379', lazyConnect: true, commandTimeoutMs: 500, readyTimeoutMs: 2000 })).type.not.toRaiseError()
})

test('the limits are numbers, with a url or a client', () => {
  expect(new RedisArchive({ url: 'redis://127.0.0.1:6379', maxSessions: 500_000, maxNewSessions: 50_000 })).type.not.toRaiseError()
  expect(new RedisArchive({ client, maxSessions: 1000 })).type.not.toRaiseError()
  expect(new RedisArchive({ client, maxSessions: '1000' })).type.toRaiseError()
})
