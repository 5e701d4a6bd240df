import t from 'tap'
import { MemoryArchive } from '../../lib/archives/memory.js'

const SESSION = JSON.stringify({ d: { user: 'someone', cart: [1, 2, 3] }, t: 1 })
// Anonymous sessions carrying more, so that the byte budget binds before the count does.
const BULKY = JSON.stringify({ d: { tracking: 'x'.repeat(1000) }, t: 1 })

t.test('a flood of sessions that never come back logs out no established user, and stays within every cap', async (t) => {
  const maxBytes = 200 * 1024
  const archive = new MemoryArchive({ maxSessions: 1000, maxBytes })
  const users = Array.from({ length: 500 }, (_, i) => `user-${i}`)
  for (const user of users) {
    await archive.set(user, 'session', SESSION, 3_600_000)
    await archive.get(user, 'session')
  }
  let highest = { sessions: 0, newSessions: 0, bytes: 0 }
  const arrivals: string[] = []
  for (let i = 0; i < 20_000; i++) {
    await archive.set(`anonymous-${i}`, 'session', BULKY, 3_600_000)
    if (i % 100 === 0) {
      // Now and then an established user comes back, and a new one logs in and comes back.
      await archive.get(users[(i / 100) % users.length] as string, 'session')
      const arrival = `arrival-${i}`
      await archive.set(arrival, 'session', SESSION, 3_600_000)
      await archive.get(arrival, 'session')
      arrivals.push(arrival)
    }
    const usage = archive.usage()
    highest = { sessions: Math.max(highest.sessions, usage.sessions), newSessions: Math.max(highest.newSessions, usage.newSessions), bytes: Math.max(highest.bytes, usage.bytes) }
  }
  const missing = []
  for (const user of [...users, ...arrivals]) if (await archive.get(user, 'session') !== SESSION) missing.push(user)
  t.same(missing, [], `all ${users.length + arrivals.length} established users kept`)
  t.ok(highest.sessions <= 1000, `at most ${highest.sessions} sessions of 1000`)
  t.ok(highest.newSessions <= 100, `at most ${highest.newSessions} new sessions of 100`)
  t.ok(highest.bytes <= maxBytes, `at most ${highest.bytes} bytes of ${maxBytes}`)
})

t.test('a flood into an archive full of established users is refused, and loses none of them', async (t) => {
  const archive = new MemoryArchive({ maxSessions: 200 })
  const users = Array.from({ length: 200 }, (_, i) => `user-${i}`)
  for (const user of users) {
    await archive.set(user, 'session', SESSION)
    await archive.get(user, 'session')
  }
  let refused = 0
  for (let i = 0; i < 5000; i++) {
    await archive.set(`anonymous-${i}`, 'session', SESSION).catch((error: { code: string }) => {
      if (error.code === 'FST_SESSION_ARCHIVE_AT_CAPACITY') refused++
    })
  }
  t.equal(refused, 5000)
  t.same(archive.usage(), { sessions: 200, newSessions: 0, bytes: archive.usage().bytes })
  for (const user of users) await archive.set(user, 'session', SESSION.replace('someone', 'changed'))
  t.same(new Set(await Promise.all(users.map((user) => archive.get(user, 'session')))), new Set([SESSION.replace('someone', 'changed')]), 'and every one of them can still be written')
})
