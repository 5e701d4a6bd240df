import { readdirSync } from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import Fastify from 'fastify'
import t from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
// The built package, as it ships: `npm test` builds it.
import { FileArchive, MemoryArchive, fastifySessions } from '../../dist/index.js'
import { send } from './client.js'

const SECRET = 'a-load-test-secret-of-32-chars!!'

async function tempDir (t) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'fastify-sessions-load-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

// A bounded load test, outside the normal run (`npm run test:load`): thousands
// of distinct sessions in cookie mode, archive mode on a MemoryArchive and
// archive mode on a FileArchive, hammered at once over real sockets. Every
// answer must be 200 and about its own session only; once every session has
// logged out and the clients have gone, heap, RSS, open file descriptors and
// active timers must be back near where they started.

// Run with plain node, tap's root test stops at 30 s unless told otherwise.
t.setTimeout(600_000)

const USERS_PER_KIND = Number(process.env['LOAD_USERS'] ?? 1500)
const DURATION_MS = Number(process.env['LOAD_SECONDS'] ?? 45) * 1000
const CONCURRENCY = 96

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc')

async function settle () {
  for (let i = 0; i < 4; i++) {
    gc()
    await sleep(100)
  }
}

function openFds () {
  return readdirSync('/proc/self/fd').length
}

function activeTimers () {
  return process.getActiveResourcesInfo().filter((kind) => kind === 'Timeout').length
}

async function measure () {
  await settle()
  const { heapUsed, rss } = process.memoryUsage()
  return { heapUsed, rss, fds: openFds(), timers: activeTimers() }
}

function routes (app, prefix, mode) {
  const config = { session: mode }
  app.post(`${prefix}/login`, { config }, async (request) => {
    const { user } = request.query
    await request.session.regenerate()
    request.session.set('user', user)
    request.session.set('count', 0)
    return { user }
  })
  app.post(`${prefix}/count`, { config }, async (request) => {
    const count = (request.session.get('count') ?? -1) + 1
    request.session.set('count', count)
    return { user: request.session.get('user') ?? null, count }
  })
  app.get(`${prefix}/read`, { config }, async (request) => ({
    user: request.session.get('user') ?? null,
    count: request.session.get('count') ?? null
  }))
  app.post(`${prefix}/logout`, { config }, async (request) => {
    await request.session.destroy()
    return { ok: true }
  })
}

t.test('thousands of sessions in both modes at once: no cross-talk, no errors, no leak', { timeout: 600_000 }, async (t) => {
  const dir = path.join(await tempDir(t), 'sessions')
  const memoryApp = Fastify()
  await memoryApp.register(fastifySessions, { secret: SECRET, archive: new MemoryArchive({ maxSessions: USERS_PER_KIND * 2, maxNewSessions: USERS_PER_KIND * 2 }) })
  routes(memoryApp, '/cookie', 'cookie')
  routes(memoryApp, '/memory', 'archive')
  const fileApp = Fastify()
  await fileApp.register(fastifySessions, { secret: SECRET, mode: 'archive', archive: new FileArchive({ dir }) })
  routes(fileApp, '/file', 'archive')
  t.teardown(async () => {
    await memoryApp.close()
    await fileApp.close()
  })
  const memoryOrigin = await memoryApp.listen({ host: '127.0.0.1', port: 0 })
  const fileOrigin = await fileApp.listen({ host: '127.0.0.1', port: 0 })

  let agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY })
  const request = (url, method, cookie) => send(agent, url, method, cookie)

  const kinds = [
    { name: 'cookie', base: `${memoryOrigin}/cookie` },
    { name: 'memory', base: `${memoryOrigin}/memory` },
    { name: 'file', base: `${fileOrigin}/file` }
  ]
  const users = kinds.flatMap(({ name, base }) =>
    Array.from({ length: USERS_PER_KIND }, (_, i) => ({ id: `${name}-${i}`, base, cookie: undefined, count: -1, checked: 0, busy: false })))

  const errors = []
  const fail = (user, what) => {
    if (errors.length < 20) errors.push(`${user.id}: ${what}`)
    else errors.length++
  }
  let requests = 0

  /** One step of a user's life: log in, then count up or read, each answer checked against what only this user can know. */
  async function step (user) {
    requests++
    if (user.cookie === undefined) {
      const login = await request(`${user.base}/login?user=${user.id}`, 'POST', undefined)
      if (login.status !== 200 || login.cookie === undefined || login.body.user !== user.id) return fail(user, `login ${login.status}`)
      user.cookie = login.cookie
      user.count = 0
      return
    }
    const reading = requests % 3 === 0
    const answer = await request(`${user.base}/${reading ? 'read' : 'count'}`, reading ? 'GET' : 'POST', user.cookie)
    if (answer.status !== 200) return fail(user, `status ${answer.status}`)
    if (answer.body.user !== user.id) return fail(user, `saw the session of ${String(answer.body.user)}`)
    const expected = reading ? user.count : user.count + 1
    if (answer.body.count !== expected) return fail(user, `count ${String(answer.body.count)}, expected ${expected}`)
    user.count = expected
    user.checked++
    if (answer.cookie !== undefined) user.cookie = answer.cookie
  }

  // Warm up with a few users of each kind, log them out, and take the baseline.
  const warm = users.filter((_, i) => i % USERS_PER_KIND < 20)
  for (let i = 0; i < 3; i++) await Promise.all(warm.map(step))
  await Promise.all(warm.map(async (user) => {
    await request(`${user.base}/logout`, 'POST', user.cookie)
    user.cookie = undefined
  }))
  agent.destroy()
  agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY })
  const baseline = await measure()
  t.comment(`baseline: heap ${(baseline.heapUsed / 2 ** 20).toFixed(1)} MB, rss ${(baseline.rss / 2 ** 20).toFixed(1)} MB, ${baseline.fds} fds, ${baseline.timers} timers`)

  const started = Date.now()
  let next = 0
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (Date.now() - started < DURATION_MS || users.some((user) => user.cookie === undefined)) {
      const user = users[next++ % users.length]
      // One request at a time per user, as a browser tab would: a user is checked against what it last saw.
      if (user.busy) continue
      user.busy = true
      await step(user).catch((error) => fail(user, error.message))
      user.busy = false
      if (Date.now() - started > DURATION_MS * 3) break
    }
  }))
  const seconds = (Date.now() - started) / 1000
  t.comment(`${requests} requests for ${users.length} sessions in ${seconds.toFixed(1)} s (${Math.round(requests / seconds)}/s)`)
  const peak = process.memoryUsage()
  t.comment(`peak: heap ${(peak.heapUsed / 2 ** 20).toFixed(1)} MB, rss ${(peak.rss / 2 ** 20).toFixed(1)} MB, ${openFds()} fds`)

  t.same(errors, [], 'no errors and no cross-talk')
  t.ok(users.every((user) => user.checked > 0), 'every session was logged into and used')

  // Every session logs out; a read with its old cookie finds nothing.
  for (let i = 0; i < users.length; i += CONCURRENCY) {
    await Promise.all(users.slice(i, i + CONCURRENCY).map(async (user) => {
      const logout = await request(`${user.base}/logout`, 'POST', user.cookie)
      if (logout.status !== 200) fail(user, `logout ${logout.status}`)
      if (!user.base.endsWith('/cookie')) {
        const after = await request(`${user.base}/read`, 'GET', user.cookie)
        if (after.body.user !== null) fail(user, 'read its session after logout')
      }
    }))
  }
  t.same(errors, [], 'every logout worked and ended its archive session')
  // The lock holder files (.<hex>.holder) stay while the archive is open, for the next locks.
  t.same(readdirSync(dir).filter((name) => !/^\.[0-9a-f]{16}\.holder$/.test(name)), [], 'the file archive holds no session and no lock')

  agent.destroy()
  await sleep(500)
  const after = await measure()
  t.comment(`after: heap ${(after.heapUsed / 2 ** 20).toFixed(1)} MB, rss ${(after.rss / 2 ** 20).toFixed(1)} MB, ${after.fds} fds, ${after.timers} timers`)
  t.ok(after.heapUsed < baseline.heapUsed * 1.5 + 32 * 2 ** 20, 'the heap is back near its baseline')
  t.ok(after.rss < baseline.rss + 256 * 2 ** 20, 'RSS is back near its baseline')
  t.ok(after.fds <= baseline.fds + 4, 'no file descriptor is left open')
  t.ok(after.timers <= baseline.timers, 'no timer is left running')
})
