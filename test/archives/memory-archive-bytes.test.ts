import t from 'tap'
import { MemoryArchive } from '../../lib/archives/memory.js'

/** What one domain holding one key costs: its name, key and value at 2 bytes per UTF-16 code unit. */
const cost = (domain: string, key: string, value: string): number => 2 * (domain.length + key.length + value.length)

t.test('bytes are counted as UTF-16 length times 2, over names, keys and values', async (t) => {
  const archive = new MemoryArchive()
  await archive.set('dom', 'k', 'héllo 🙂')
  t.equal(archive.usage().bytes, cost('dom', 'k', 'héllo 🙂'))
  t.equal('héllo 🙂'.length, 8, 'the emoji is two code units')
  await archive.set('dom', 'k', 'x')
  await archive.set('dom', 'k2', 'yy')
  t.equal(archive.usage().bytes, 2 * ('dom'.length + 'k'.length + 1 + 'k2'.length + 2))
  await archive.removeDomain('dom')
  t.equal(archive.usage().bytes, 0)
})

t.test('creating a domain beyond maxBytes first removes the oldest new ones; established ones stay', async (t) => {
  const value = 'v'.repeat(40)
  const one = cost('domain-0', 'session', value)
  const archive = new MemoryArchive({ maxSessions: 100, maxNewSessions: 100, maxBytes: one * 5 })
  await archive.set('domain-0', 'session', value)
  await archive.set('domain-1', 'session', value)
  await archive.get('domain-0', 'session')
  await archive.get('domain-1', 'session')
  for (let i = 2; i < 8; i++) await archive.set(`domain-${i}`, 'session', value)
  t.ok(archive.usage().bytes <= one * 5, `${archive.usage().bytes} bytes held, at most ${one * 5}`)
  t.same(await Promise.all(['domain-0', 'domain-1', 'domain-2', 'domain-4', 'domain-5', 'domain-7'].map((domain) => archive.hasDomain(domain))),
    [true, true, false, false, true, true], 'the three oldest new ones went')
})

t.test('when established domains fill maxBytes, creating one rejects with FST_SESSION_ARCHIVE_AT_CAPACITY, and removes nothing', async (t) => {
  const value = 'v'.repeat(40)
  const one = cost('domain-0', 'session', value)
  const archive = new MemoryArchive({ maxSessions: 100, maxNewSessions: 100, maxBytes: one * 3 })
  for (const domain of ['domain-0', 'domain-1']) {
    await archive.set(domain, 'session', value)
    await archive.get(domain, 'session')
  }
  await archive.set('domain-2', 'session', 'small')
  await t.rejects(archive.set('domain-3', 'session', value + value), { code: 'FST_SESSION_ARCHIVE_AT_CAPACITY' })
  t.equal(await archive.hasDomain('domain-2'), true, 'the new domain was not removed for a creation that could not fit anyway')
  await archive.set('domain-3', 'session', value)
  t.equal(await archive.hasDomain('domain-2'), false, 'a creation that fits once the new ones are gone removes them')
})

t.test('a write to an existing domain is never refused: it removes new domains for room, then may pass maxBytes', async (t) => {
  const value = 'v'.repeat(40)
  const one = cost('domain-0', 'session', value)
  const archive = new MemoryArchive({ maxSessions: 100, maxNewSessions: 100, maxBytes: one * 3 })
  await archive.set('domain-0', 'session', value)
  await archive.get('domain-0', 'session')
  await archive.set('domain-1', 'session', value)
  await archive.set('domain-2', 'session', value)
  await archive.set('domain-1', 'session', value + value)
  t.same(await Promise.all(['domain-0', 'domain-1', 'domain-2'].map((domain) => archive.hasDomain(domain))), [true, true, false],
    'the growing new domain kept itself and removed the other new one')
  await archive.get('domain-1', 'session')
  await archive.set('domain-0', 'session', value + value)
  t.equal(await archive.get('domain-0', 'session'), value + value, 'an established session grows though nothing new is left')
  t.ok(archive.usage().bytes > one * 3, 'past maxBytes, by what established sessions grew')
})

t.test('a growing session removes no more new domains than it needs, oldest first', async (t) => {
  const archive = new MemoryArchive({ maxSessions: 100, maxNewSessions: 100, maxBytes: 1000 })
  await archive.set('domain-0', 'session', 'v'.repeat(100))
  await archive.get('domain-0', 'session')
  for (const domain of ['domain-1', 'domain-2', 'domain-3']) await archive.set(domain, 'session', 'small')
  t.equal(archive.usage().bytes, 350)
  await archive.set('domain-0', 'session', 'v'.repeat(450))
  t.same(await Promise.all(['domain-1', 'domain-2', 'domain-3'].map((domain) => archive.hasDomain(domain))), [false, false, true])
  t.equal(archive.usage().bytes, 970)
})

t.test('a value larger than maxValueBytes rejects with FST_SESSION_UNSERIALIZABLE and stores nothing', async (t) => {
  const archive = new MemoryArchive({ maxValueBytes: 20 })
  await archive.set('domain', 'session', 'x'.repeat(10))
  const error = await archive.set('domain', 'session', 'x'.repeat(11)).then(() => undefined, (error: Error) => error)
  t.match(error, { code: 'FST_SESSION_UNSERIALIZABLE', message: /22 bytes, over the memory archive's maxValueBytes of 20; store less in the session or raise maxValueBytes/ })
  t.equal(await archive.get('domain', 'session'), 'x'.repeat(10), 'the stored value stays')
  await t.rejects(archive.set('other', 'session', 'y'.repeat(11)), { code: 'FST_SESSION_UNSERIALIZABLE' })
  t.equal(await archive.hasDomain('other'), false)
})

t.test('by default maxBytes is 64 MiB and maxValueBytes 1 MiB', async (t) => {
  const archive = new MemoryArchive()
  const mib = 'x'.repeat(512 * 1024)
  await archive.set('domain', 'session', mib)
  await t.rejects(archive.set('domain', 'session', mib + 'x'), { code: 'FST_SESSION_UNSERIALIZABLE' })
  const many = new MemoryArchive({ maxNewSessions: 10_000 })
  for (let i = 0; i < 70; i++) await many.set(`domain-${i}`, 'session', mib)
  t.ok(many.usage().bytes <= 64 * 1024 * 1024, `${many.usage().bytes} bytes held`)
  t.equal(many.usage().sessions, 63, 'sixty-three sessions of 1 MiB and a few bytes fit in 64 MiB')
})
