import { randomBytes } from 'node:crypto'
import * as fsp from 'node:fs/promises'
import path from 'node:path'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { setImmediate as nextTick } from 'node:timers/promises'
import t from 'tap'
import { FileArchive } from '../../lib/archives/file.js'
import { tempDir } from '../helpers/temp-dir.js'
import { withoutHolders } from '../helpers/file-archive-files.js'

// The sweep streams the dir and handles it in batches of 64 entries, yielding
// to the event loop between batches: tens of thousands of expired sessions
// drain while the server goes on serving, and a live session is written and
// read meanwhile.

const EXPIRED = 20_000
const BATCH = 64

t.setTimeout(240_000)

t.test(`${EXPIRED} expired sessions drain in batches, while a live session is written and read`, async (t) => {
  const dir = path.join(await tempDir(t), 'sessions')
  await fsp.mkdir(dir, { mode: 0o700 })
  const past = new Date(Date.now() - 1000)
  for (let made = 0; made < EXPIRED; made += 250) {
    await Promise.all(Array.from({ length: 250 }, async () => {
      const domainDir = path.join(dir, randomBytes(16).toString('base64url'))
      await fsp.mkdir(domainDir, { mode: 0o700 })
      await fsp.writeFile(path.join(domainDir, 'session.json'), '{"c":1,"t":1,"d":{}}', { mode: 0o600 })
      await fsp.utimes(path.join(domainDir, 'session.json'), past, past)
    }))
  }
  // Counts the domains being swept at once: each is listed (readdir) while it is swept.
  const listing = { now: 0, most: 0 }
  const fs = {
    ...fsp,
    readdir: (async (target: string) => {
      listing.most = Math.max(listing.most, ++listing.now)
      try {
        return await fsp.readdir(target)
      } finally {
        listing.now--
      }
    }) as typeof fsp.readdir
  }
  const archive = new FileArchive({ dir, sweepIntervalMs: 0, fs })
  t.teardown(() => archive.close())
  const live = randomBytes(16).toString('base64url')
  await archive.set(live, 'session', 'live', 3_600_000)

  const delay = monitorEventLoopDelay({ resolution: 10 })
  delay.enable()
  const sweeping = { done: false }
  const sweep = archive.sweep().finally(() => { sweeping.done = true })
  await nextTick()
  await archive.set(live, 'session', 'written during the sweep', 3_600_000)
  const served = (await archive.get(live, 'session')) === 'written during the sweep' && !sweeping.done

  t.equal(await sweep, EXPIRED, 'every expired session is removed')
  delay.disable()
  t.ok(served, 'a live session was written and read while the sweep ran')
  t.ok(listing.most <= BATCH, `at most ${listing.most} domains were swept at once: one batch`)
  t.comment(`longest event-loop delay during the sweep: ${(delay.max / 1e6).toFixed(1)} ms`)
  t.same(withoutHolders(await fsp.readdir(dir)), [live], 'only the live session is left')
  t.equal(await archive.get(live, 'session'), 'written during the sweep')
})
