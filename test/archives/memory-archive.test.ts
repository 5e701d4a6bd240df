import t from 'tap'
import { MemoryArchive } from '../../lib/archives/memory.js'

const [a, b, c, d] = ['domain-a', 'domain-b', 'domain-c', 'domain-d']

t.test('beyond maxSessions the least recently used domain is evicted', async (t) => {
  const archive = new MemoryArchive({ maxSessions: 3 })
  await archive.set(a, 'session', '1')
  await archive.set(b, 'session', '2')
  await archive.set(c, 'session', '3')
  await archive.set(c, 'other', '3')
  t.equal(await archive.hasDomain(a), true, 'a second key in a domain is not a new session')

  await archive.set(d, 'session', '4')
  t.equal(await archive.hasDomain(a), false, 'the oldest went')
  t.same(await Promise.all([b, c, d].map((domain) => archive.get(domain, 'session'))), ['2', '3', '4'])
})

t.test('a get makes a domain the most recently used', async (t) => {
  const archive = new MemoryArchive({ maxSessions: 3 })
  await archive.set(a, 'session', '1')
  await archive.set(b, 'session', '2')
  await archive.set(c, 'session', '3')
  t.equal(await archive.get(a, 'missing'), undefined)
  await archive.set(d, 'session', '4')
  t.equal(await archive.get(a, 'session'), '1', 'a was read, so b was the least recently used')
  t.equal(await archive.hasDomain(b), false)
})

t.test('a set makes a domain the most recently used; has and hasDomain do not', async (t) => {
  const archive = new MemoryArchive({ maxSessions: 2 })
  await archive.set(a, 'session', '1')
  await archive.set(b, 'session', '2')
  await archive.set(a, 'session', '1 again')
  await archive.has(b, 'session')
  await archive.hasDomain(b)
  await archive.set(c, 'session', '3')
  t.equal(await archive.get(a, 'session'), '1 again')
  t.equal(await archive.hasDomain(b), false)
})

t.test('ttl expiry reads the clock and starts no timer', async (t) => {
  const archive = new MemoryArchive()
  const realNow = Date.now
  const realSetTimeout = globalThis.setTimeout
  const realSetInterval = globalThis.setInterval
  let timers = 0
  let now = realNow()
  Date.now = () => now
  globalThis.setTimeout = ((...args: Parameters<typeof setTimeout>) => { timers++; return realSetTimeout(...args) }) as typeof setTimeout
  globalThis.setInterval = ((...args: Parameters<typeof setInterval>) => { timers++; return realSetInterval(...args) }) as typeof setInterval
  t.teardown(() => {
    Date.now = realNow
    globalThis.setTimeout = realSetTimeout
    globalThis.setInterval = realSetInterval
  })

  for (let i = 0; i < 100; i++) await archive.set(`domain-${i}`, 'session', 'x', 1000)
  await archive.set(a, 'kept', 'x')
  await archive.set(a, 'brief', 'y', 1000)
  now += 999
  t.equal(await archive.get('domain-0', 'session'), 'x', 'alive 1 ms before its ttl')
  now += 1
  t.equal(await archive.get('domain-0', 'session'), undefined, 'gone at its ttl')
  t.equal(await archive.hasDomain('domain-0'), false, 'its domain with it')
  t.equal(await archive.has('domain-1', 'session'), false)
  t.equal(await archive.hasDomain('domain-1'), false)
  t.equal(await archive.hasDomain('domain-2'), false, 'a domain whose keys all expired is gone when asked')
  t.equal(await archive.has(a, 'brief'), false)
  t.equal(await archive.hasDomain(a), true)
  t.equal(await archive.get(a, 'kept'), 'x')
  t.equal(timers, 0)
})

t.test('close forgets every session', async (t) => {
  const archive = new MemoryArchive()
  await archive.set(a, 'session', '1')
  await archive.set(b, 'session', '2', 60_000)
  await archive.close()
  t.equal(await archive.hasDomain(a), false)
  t.equal(await archive.get(b, 'session'), undefined)
})

t.test('maxSessions must be a positive integer', async (t) => {
  for (const maxSessions of [0, -1, 1.5, Number.NaN, Infinity]) {
    t.throws(() => new MemoryArchive({ maxSessions }), { code: 'FST_SESSION_INVALID_OPTION' }, String(maxSessions))
  }
  t.doesNotThrow(() => new MemoryArchive({ maxSessions: 1 }))
})

t.test('removing the last key ends the domain, and frees its place', async (t) => {
  const archive = new MemoryArchive({ maxSessions: 2 })
  await archive.set(a, 'one', '1')
  await archive.set(a, 'two', '2')
  await archive.set(b, 'session', '3')
  await archive.remove(a, 'one')
  t.equal(await archive.hasDomain(a), true)
  await archive.remove(a, 'two')
  t.equal(await archive.hasDomain(a), false)
  await archive.set(c, 'session', '4')
  t.equal(await archive.get(b, 'session'), '3', 'b kept: a\'s place was free')
  await archive.removeDomain(c)
  await archive.set(d, 'session', '5')
  t.equal(await archive.get(b, 'session'), '3', 'removeDomain frees a place too')
})
