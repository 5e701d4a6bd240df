import t from 'tap'
import { MemoryArchive } from '../../lib/archives/memory.js'

const [a, b, c, d] = ['domain-a', 'domain-b', 'domain-c', 'domain-d']

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

t.test('close keeps every session: an archive passed in may be shared by another app', async (t) => {
  // Two apps sharing one archive need the plugin to close it per app; this
  // pins the archive's half: closing it loses nothing, and it keeps working.
  const archive = new MemoryArchive()
  await archive.set(a, 'session', '1')
  await archive.set(b, 'session', '2', 60_000)
  await archive.close()
  t.equal(await archive.get(a, 'session'), '1')
  t.equal(await archive.get(b, 'session'), '2')
  await archive.set(c, 'session', '3')
  t.equal(await archive.get(c, 'session'), '3')
})

t.test('every limit must be a positive integer, maxNewSessions at most maxSessions, maxValueBytes at most maxBytes', async (t) => {
  for (const option of ['maxSessions', 'maxNewSessions', 'maxBytes', 'maxValueBytes']) {
    for (const value of [0, -1, 1.5, Number.NaN, Infinity, '10' as unknown as number]) {
      t.throws(() => new MemoryArchive({ [option]: value }), { code: 'FST_SESSION_INVALID_OPTION', message: new RegExp(option) }, `${option}: ${String(value)}`)
    }
  }
  t.throws(() => new MemoryArchive({ maxSessions: 10, maxNewSessions: 11 }), { code: 'FST_SESSION_INVALID_OPTION', message: /maxNewSessions/ })
  t.throws(() => new MemoryArchive({ maxBytes: 100, maxValueBytes: 101 }), { code: 'FST_SESSION_INVALID_OPTION', message: /maxValueBytes/ })
  t.doesNotThrow(() => new MemoryArchive({ maxSessions: 1, maxNewSessions: 1, maxBytes: 1, maxValueBytes: 1 }))
  t.doesNotThrow(() => new MemoryArchive({ maxBytes: 1000 }), 'maxValueBytes follows a smaller maxBytes down')
})

t.test('removing the last key ends the domain, and frees its place', async (t) => {
  const archive = new MemoryArchive({ maxSessions: 2, maxNewSessions: 2 })
  for (const domain of [a, b]) await archive.set(domain, 'session', domain)
  await Promise.all([a, b].map((domain) => archive.get(domain, 'session')))
  await archive.set(a, 'other', '2')
  await archive.remove(a, 'session')
  t.equal(await archive.hasDomain(a), true)
  await archive.remove(a, 'other')
  await archive.remove(a, 'other')
  await archive.remove(b, 'never set')
  t.equal(await archive.hasDomain(a), false)
  t.same(archive.usage(), { sessions: 1, newSessions: 0, bytes: 2 * (b.length + 'session'.length + b.length) })
  await archive.set(c, 'session', '4')
  t.equal(await archive.get(b, 'session'), b, 'b kept: a\'s place was free')
  await archive.removeDomain(c)
  await archive.removeDomain(c)
  await archive.set(d, 'session', '5')
  t.equal(await archive.get(b, 'session'), b, 'removeDomain frees a place too')
})

t.test('compareAndSet writes only over the expected value, and an expired value is no value', async (t) => {
  const archive = new MemoryArchive()
  t.equal(await archive.compareAndSet(a, 'session', undefined, 'one', 60_000), true, 'creates when nothing is there')
  t.equal(await archive.compareAndSet(a, 'session', undefined, 'two', 60_000), false, 'does not create over a value')
  t.equal(await archive.compareAndSet(a, 'session', 'nope', 'two', 60_000), false, 'does not replace another value')
  t.equal(await archive.compareAndSet(b, 'session', 'one', 'two', 60_000), false, 'nor write into a domain that is not there')
  t.equal(await archive.hasDomain(b), false)
  t.equal(await archive.compareAndSet(a, 'session', 'one', 'two', 60_000), true)
  t.equal(await archive.get(a, 'session'), 'two')
  await archive.set(a, 'session', 'brief', 1)
  await new Promise((resolve) => setTimeout(resolve, 20))
  t.equal(await archive.compareAndSet(a, 'session', 'brief', 'late', 60_000), false)
  t.equal(await archive.compareAndSet(a, 'session', undefined, 'fresh', 60_000), true)
  t.equal(await archive.get(a, 'session'), 'fresh')
})
