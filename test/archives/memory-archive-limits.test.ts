import t from 'tap'
import { MemoryArchive } from '../../lib/archives/memory.js'
import { advanceClock } from '../helpers/clock.js'

/** Domains named like the plugin's session ids would be, numbered for reading. */
const ids = (from: number, count: number): string[] => Array.from({ length: count }, (_, i) => `domain-${from + i}`)

async function create (archive: MemoryArchive, domains: string[], ttlMs?: number): Promise<void> {
  for (const domain of domains) await archive.set(domain, 'session', `data of ${domain}`, ttlMs)
}

/** Reads each domain back, as a returning browser does: that establishes it. */
async function comeBack (archive: MemoryArchive, domains: string[]): Promise<Array<string | undefined>> {
  return Promise.all(domains.map((domain) => archive.get(domain, 'session')))
}

async function present (archive: MemoryArchive, domains: string[]): Promise<boolean[]> {
  return Promise.all(domains.map((domain) => archive.hasDomain(domain)))
}

t.test('beyond maxNewSessions the oldest new domain goes; established ones stay', async (t) => {
  const archive = new MemoryArchive({ maxSessions: 10, maxNewSessions: 3 })
  const established = ids(0, 2)
  await create(archive, established)
  await comeBack(archive, established)
  const fresh = ids(100, 5)
  await create(archive, fresh)
  t.same(await present(archive, fresh), [false, false, true, true, true], 'the two oldest new domains made room')
  t.same(await present(archive, established), [true, true])
  t.same(archive.usage(), { sessions: 5, newSessions: 3, bytes: archive.usage().bytes })
})

t.test('a domain is new until a get finds it; has, hasDomain and a get of a missing key do not establish it', async (t) => {
  const archive = new MemoryArchive({ maxSessions: 10, maxNewSessions: 2 })
  const [probed, found, other] = ids(0, 3) as [string, string, string]
  await create(archive, [probed, found])
  await archive.has(probed, 'session')
  await archive.hasDomain(probed)
  await archive.get(probed, 'missing')
  t.equal(await archive.get(found, 'session'), `data of ${found}`)
  t.equal(archive.usage().newSessions, 1)
  await create(archive, [other, 'one-more'])
  t.same(await present(archive, [probed, found, other]), [false, true, true], 'the probed domain was still new, and the oldest')
})

t.test('a write to an existing domain is not a creation: it counts nothing new and evicts nothing', async (t) => {
  const archive = new MemoryArchive({ maxSessions: 10, maxNewSessions: 2 })
  const [first, second] = ids(0, 2) as [string, string]
  await create(archive, [first, second])
  await archive.set(first, 'session', 'again')
  await archive.set(second, 'flash', 'hello')
  t.same(await present(archive, [first, second]), [true, true])
  t.equal(archive.usage().newSessions, 2)
})

t.test('beyond maxSessions the oldest new domain goes, even under the new quota', async (t) => {
  const archive = new MemoryArchive({ maxSessions: 5, maxNewSessions: 3 })
  const established = ids(0, 3)
  await create(archive, established)
  await comeBack(archive, established)
  const fresh = ids(100, 3)
  await create(archive, fresh)
  t.same(await present(archive, fresh), [false, true, true])
  t.same(await present(archive, established), [true, true, true])
  t.equal(archive.usage().sessions, 5)
})

t.test('when established domains fill maxSessions, creating one rejects with FST_SESSION_ARCHIVE_AT_CAPACITY; writes to existing ones succeed', async (t) => {
  const archive = new MemoryArchive({ maxSessions: 3, maxNewSessions: 1 })
  const established = ids(0, 3)
  for (const domain of established) {
    await create(archive, [domain])
    await comeBack(archive, [domain])
  }
  await t.rejects(archive.set('domain-new', 'session', 'x'), { code: 'FST_SESSION_ARCHIVE_AT_CAPACITY', statusCode: 503 })
  t.equal(await archive.hasDomain('domain-new'), false, 'nothing of it was stored')
  await archive.set('domain-0', 'session', 'changed')
  await archive.set('domain-1', 'second key', 'added')
  t.same(await comeBack(archive, established), ['changed', 'data of domain-1', 'data of domain-2'])
  await archive.removeDomain('domain-2')
  await archive.set('domain-new', 'session', 'x')
  t.equal(await archive.get('domain-new', 'session'), 'x', 'a freed place takes a new domain again')
})

t.test('expired domains leave the counts: they never keep a live domain out', async (t) => {
  const archive = new MemoryArchive({ maxSessions: 3, maxNewSessions: 3 })
  const brief = ids(0, 3)
  await create(archive, brief, 1000)
  await comeBack(archive, brief)
  await t.rejects(archive.set('domain-late', 'session', 'x'), { code: 'FST_SESSION_ARCHIVE_AT_CAPACITY' })
  advanceClock(t, 1000)
  await archive.set('domain-late', 'session', 'x')
  t.equal(await archive.get('domain-late', 'session'), 'x')
  t.same(archive.usage(), { sessions: 1, newSessions: 0, bytes: 2 * ('domain-late'.length + 'session'.length + 1) }, 'the expired ones were swept')
})

t.test('a domain whose keys all expired is created anew when written: new again, under the quota', async (t) => {
  const archive = new MemoryArchive({ maxSessions: 10, maxNewSessions: 1 })
  await create(archive, ['domain-a'], 1000)
  await comeBack(archive, ['domain-a'])
  advanceClock(t, 1000)
  await create(archive, ['domain-a'])
  t.equal(archive.usage().newSessions, 1, 'it is new, not established')
  await create(archive, ['domain-b'])
  t.same(await present(archive, ['domain-a', 'domain-b']), [false, true])
})

t.test('the new quota is a tenth of maxSessions unless given, and at least one', async (t) => {
  const archive = new MemoryArchive({ maxSessions: 30 })
  await create(archive, ids(0, 5))
  t.equal(archive.usage().newSessions, 3)
  const tiny = new MemoryArchive({ maxSessions: 5 })
  await create(tiny, ids(0, 2))
  t.equal(tiny.usage().newSessions, 1)
  const defaults = new MemoryArchive()
  await create(defaults, ids(0, 1001))
  t.same(defaults.usage().newSessions, 1000, 'by default 10_000 sessions, 1_000 of them new')
})

t.test('a sweep at a limit drops only the expired keys, and keeps the others with their own time', async (t) => {
  const archive = new MemoryArchive({ maxSessions: 4, maxNewSessions: 4 })
  await archive.set('domain-brief', 'session', 'x', 1000)
  await archive.set('domain-mixed', 'brief', 'x', 1000)
  await archive.set('domain-mixed', 'kept', 'x', 5000)
  await archive.set('domain-later', 'session', 'x', 3000)
  await archive.set('domain-forever', 'session', 'x')
  await comeBack(archive, ['domain-brief', 'domain-later', 'domain-forever'])
  await archive.get('domain-mixed', 'kept')
  advanceClock(t, 1000)
  await archive.set('domain-next', 'session', 'x')
  t.same(archive.usage().sessions, 4, 'the one expired domain was swept to make room')
  t.same(await present(archive, ['domain-brief', 'domain-mixed', 'domain-later', 'domain-forever']), [false, true, true, true])
  t.equal(await archive.has('domain-mixed', 'brief'), false)
  advanceClock(t, 2000)
  t.equal(await archive.get('domain-later', 'session'), undefined, 'a key kept by the sweep still expires at its own time')
  t.equal(await archive.get('domain-mixed', 'kept'), 'x')
})
