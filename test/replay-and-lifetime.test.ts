import path from 'node:path'
import type { LightMyRequestResponse } from 'fastify'
import t, { type Test } from 'tap'
import type { Archive } from '../lib/archives/archive.js'
import { FileArchive } from '../lib/archives/file.js'
import { MemoryArchive } from '../lib/archives/memory.js'
import type { FastifySessionsOptions } from '../lib/index.js'
import { buildApp, cookieValue, OTHER_SECRET, SECRET, setCookies } from './helpers/app.js'
import { advanceClock } from './helpers/clock.js'
import { tempDir } from './helpers/temp-dir.js'

// What a captured cookie can still do, in each mode, as the clock moves.
// Archive mode: the server holds the state, so logout, regenerate and
// timeouts end a cookie for good. Cookie mode: the cookie *is* the state, so
// the server cannot take it back: a copy stays valid until its own idle or
// absolute expiry, or until its secret is dropped from the list.

const MAX_AGE = 600
const ABSOLUTE = 3600
const SECOND = 1000

interface Setup {
  label: string
  name: string
  archive?: (t: Test) => Promise<Archive>
}

const ARCHIVES: Setup[] = [
  { label: 'archive mode (MemoryArchive)', name: 'session-id', archive: async () => new MemoryArchive() },
  {
    label: 'archive mode (FileArchive)',
    name: 'session-id',
    archive: async (t) => new FileArchive({ dir: path.join(await tempDir(t), 'sessions'), sweepIntervalMs: 0 })
  }
]
const COOKIE: Setup = { label: 'cookie mode', name: 'session' }
const ALL = [COOKIE, ...ARCHIVES]

/** An app of the set-up with login, read, visit and logout routes, and a client that sends one cookie. */
async function sessionApp (t: Test, setup: Setup, options: Partial<FastifySessionsOptions> = {}, archive?: Archive) {
  const base: Partial<FastifySessionsOptions> = { maxAge: MAX_AGE, absoluteTimeout: ABSOLUTE, ...options }
  if (setup.archive !== undefined) Object.assign(base, { mode: 'archive', archive: archive ?? await setup.archive(t) })
  const app = await buildApp(t, base)
  app.post('/login', async (request) => {
    await request.session.regenerate(['visits'])
    request.session.set('user', 'ada')
    return { ok: true }
  })
  app.post('/visit', async (request) => {
    request.session.set('visits', (request.session.get('visits') as number | undefined ?? 0) + 1)
    return { ok: true }
  })
  app.get('/read', async (request) => ({
    isNew: request.session.isNew,
    user: request.session.get('user') ?? null,
    visits: request.session.get('visits') ?? null
  }))
  app.post('/logout', async (request) => {
    await request.session.destroy()
    return { ok: true }
  })
  const send = (method: 'GET' | 'POST', url: string, cookie?: string): Promise<LightMyRequestResponse> =>
    app.inject({ method, url, cookies: cookie === undefined ? {} : { [setup.name]: cookie } })
  const read = async (cookie: string) => {
    const response = await send('GET', '/read', cookie)
    t.equal(response.statusCode, 200)
    return response.json() as { isNew: boolean, user: string | null, visits: number | null }
  }
  const issued = (response: LightMyRequestResponse): string => {
    t.equal(response.statusCode, 200)
    const value = cookieValue(response, setup.name)
    t.ok(value !== undefined && value !== '', 'a session cookie was issued')
    return value as string
  }
  return { app, send, read, issued, archive: base.archive }
}

const LOGGED_IN = { isNew: false, user: 'ada', visits: null }
const FRESH = { isNew: true, user: null, visits: null }

for (const setup of ARCHIVES) {
  t.test(`${setup.label}: a cookie captured before logout is refused after it, by every instance sharing the archive`, async (t) => {
    const { send, read, issued, archive } = await sessionApp(t, setup)
    const other = await sessionApp(t, setup, {}, archive)
    const captured = issued(await send('POST', '/login'))
    t.same(await other.read(captured), LOGGED_IN, 'the other instance sees the session')
    const logout = await send('POST', '/logout', captured)
    t.match(setCookies(logout), [/^session-id=; Max-Age=0;/])
    t.same(await read(captured), FRESH, 'the captured cookie opens nothing')
    t.same(await other.read(captured), FRESH, 'on any instance')
    const id = captured.split('.')[0] as string
    t.equal(await archive!.hasDomain(id), false, 'nothing is stored under its id')
    const replayWrite = issued(await send('POST', '/visit', captured))
    t.not(replayWrite.split('.')[0], id, 'a write with the captured cookie starts a session under a new id')
    t.equal(await archive!.hasDomain(id), false, 'and does not bring the old id back')
  })

  t.test(`${setup.label}: after regenerate the old id is refused and its state gone`, async (t) => {
    const { send, read, issued, archive } = await sessionApp(t, setup)
    const before = issued(await send('POST', '/visit'))
    const after = issued(await send('POST', '/login', before))
    t.not(after.split('.')[0], before.split('.')[0], 'a new id')
    t.same(await read(after), { isNew: false, user: 'ada', visits: 1 }, 'the state moved to the new id')
    t.same(await read(before), FRESH, 'the old id opens nothing')
    t.equal(await archive!.hasDomain(before.split('.')[0] as string), false)
  })
}

t.test('cookie mode: a cookie captured before logout stays valid until its own expiry, unless its secret is dropped', async (t) => {
  const { send, read, issued } = await sessionApp(t, COOKIE)
  const captured = issued(await send('POST', '/login'))
  const logout = await send('POST', '/logout', captured)
  t.match(setCookies(logout), [/^session=; Max-Age=0;/], 'logout tells the browser to drop the cookie')
  // The server keeps no state to revoke: a copy made before logout still opens the session.
  t.same(await read(captured), LOGGED_IN, 'the captured cookie still opens the session after logout')
  advanceClock(t, (MAX_AGE - 1) * SECOND)
  t.same(await read(captured), LOGGED_IN, 'up to one second before its idle expiry')

  const rotated = await buildApp(t, { secret: [OTHER_SECRET, SECRET], maxAge: MAX_AGE, absoluteTimeout: ABSOLUTE })
  rotated.get('/read', async (request) => ({ user: request.session.get('user') ?? null }))
  t.same((await rotated.inject({ url: '/read', cookies: { session: captured } })).json(), { user: 'ada' },
    'a new secret in front of the old one still accepts it')
  const dropped = await buildApp(t, { secret: OTHER_SECRET, maxAge: MAX_AGE, absoluteTimeout: ABSOLUTE })
  dropped.get('/read', async (request) => ({ user: request.session.get('user') ?? null }))
  t.same((await dropped.inject({ url: '/read', cookies: { session: captured } })).json(), { user: null },
    'dropping the secret that sealed it refuses it at once')

  advanceClock(t, SECOND)
  t.same(await read(captured), FRESH, 'and at its idle expiry it is refused')
})

t.test('cookie mode: a cookie from before regenerate stays valid, but never carries what was set after it', async (t) => {
  const { send, read, issued } = await sessionApp(t, COOKIE)
  const before = issued(await send('POST', '/visit'))
  const after = issued(await send('POST', '/login', before))
  t.same(await read(after), { isNew: false, user: 'ada', visits: 1 })
  t.same(await read(before), { isNew: false, user: null, visits: 1 }, 'the old cookie opens the old, anonymous state only')
})

for (const setup of ALL) {
  t.test(`${setup.label}: a cookie planted before login never carries the login (no fixation)`, async (t) => {
    const { send, read, issued } = await sessionApp(t, setup)
    const planted = issued(await send('POST', '/visit'))
    const victim = issued(await send('POST', '/login', planted))
    t.not(victim, planted)
    t.equal((await read(planted)).user, null, 'the planted cookie does not see the user')
    t.equal((await read(victim)).user, 'ada')
  })

  t.test(`${setup.label}: a session idle for maxAge is refused, and reads without rolling do not slide it`, async (t) => {
    const { send, read, issued } = await sessionApp(t, setup)
    const cookie = issued(await send('POST', '/login'))
    advanceClock(t, (MAX_AGE - 1) * SECOND)
    t.same(await read(cookie), LOGGED_IN, 'one second before the idle limit')
    advanceClock(t, SECOND)
    t.same(await read(cookie), FRESH, 'at the idle limit, though it was read a second ago')
    t.same(await read(cookie), FRESH, 'and after')
  })

  t.test(`${setup.label}: rolling and activity slide the idle limit but never the absolute one`, async (t) => {
    const { send, read, issued } = await sessionApp(t, setup, { rolling: true })
    let cookie = issued(await send('POST', '/login'))
    const step = (MAX_AGE / 2) * SECOND
    let elapsed = 0
    let round = 0
    while (elapsed + step < ABSOLUTE * SECOND) {
      advanceClock(t, step)
      elapsed += step
      const response = round++ % 2 === 0 ? await send('GET', '/read', cookie) : await send('POST', '/visit', cookie)
      t.equal(response.statusCode, 200)
      cookie = issued(response)
      const maxAge = Number(/; Max-Age=(\d+);/.exec(setCookies(response)[0] ?? '')?.[1])
      t.ok(maxAge <= ABSOLUTE - elapsed / SECOND, `at ${elapsed / SECOND}s the cookie lives ${maxAge}s, not past the absolute limit`)
    }
    t.equal((await read(cookie)).user, 'ada', 'kept alive by activity, long past maxAge')
    advanceClock(t, ABSOLUTE * SECOND - elapsed - SECOND)
    t.equal((await read(cookie)).user, 'ada', 'one second before the absolute limit')
    advanceClock(t, SECOND)
    const ended = await send('GET', '/read', cookie)
    t.same(ended.json(), FRESH, 'at the absolute limit it ends, however active')
    t.match(setCookies(ended), [/^[^=]+=; Max-Age=0;/], 'and rolling does not re-issue it: the refused cookie is cleared')
  })
}
