import t from 'tap'
import { ExpressStoreArchive, FileArchive, MemoryArchive, RedisArchive } from '../../lib/index.js'

t.test('every archive refuses an option it does not know, naming it, instead of keeping its default', async (t) => {
  const store = { get () {}, set () {}, destroy () {} }
  const cases: Array<[string, () => unknown]> = [
    ['MemoryArchive.maxSesions', () => new MemoryArchive({ maxSesions: 5 } as never)],
    ['FileArchive.maxsessions', () => new FileArchive({ dir: '/tmp/never-made', maxsessions: 5 } as never)],
    ['RedisArchive.ttl', () => new RedisArchive({ url: 'redis://127.0.0.1:1', ttl: 60 } as never)],
    ['ExpressStoreArchive.prefix', () => new ExpressStoreArchive(store as never, { prefix: 'x' } as never)]
  ]
  for (const [option, make] of cases) {
    t.throws(make, { code: 'FST_SESSION_INVALID_OPTION', option }, option)
  }
  for (const options of ['big', null, []]) {
    t.throws(() => new MemoryArchive(options as never), { code: 'FST_SESSION_INVALID_OPTION', option: 'MemoryArchive options' }, JSON.stringify(options))
  }
})
