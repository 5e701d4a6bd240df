import { readdirSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import Fastify from 'fastify'
import { Redis } from 'ioredis'
import t from 'tap'
// The built package, as it ships: `npm run test:load` builds it.
import { FileArchive, MemoryArchive, RedisArchive, fastifySessions } from '../../dist/index.js'
import { send } from './client.js'

// A bounded flood, outside the normal run (`npm run test:load`): for each
// built-in archive, established users keep using their sessions while
// cookieless requests to a route that writes the session pour in over
// loopback. Storage must stay at or under the archive's cap, no established
// user may lose the session, and the heap must come back near its baseline.

t.setTimeout(600_000)

const SECRET = 'a-flood-test-secret-of-32-chars!'
const REDIS_URL = 'redis://127.0.0.1:6379'
const ESTABLISHED = Number(process.env['FLOOD_USERS'] ?? 300)
const FLOOD = Number(process.env['FLOOD_REQUESTS'] ?? 8000)
const MAX_SECONDS = Number(process.env['FLOOD_SECONDS'] ?? 40)
const MAX_SESSIONS = 1000
const MAX_NEW = 200
const CONCURRENCY = 48
const ID_DIR = /^[A-Za-z0-9_-]{32}$/

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc')

async function heapNow () {
  for (let i = 0; i < 4; i++) {
    gc()
    await sleep(100)
  }
  return process.memoryUsage().heapUsed
}

async function redisAnswers () {
  const client = new Redis(REDIS_URL, { lazyConnect: true, connectTimeout: 500, maxRetriesPerRequest: 0, retryStrategy: () => null })
  client.on('error', () => {})
  try {
    await client.connect()
    return await client.ping() === 'PONG'
  } catch {
    return false
  } finally {
    client.disconnect()
  }
}

const archives = [
  {
    name: 'memory',
    async make () {
      const archive = new MemoryArchive({ maxSessions: MAX_SESSIONS, maxNewSessions: MAX_NEW })
      return { archive, stored: async () => archive.usage().sessions, cleanup: async () => {} }
    }
  },
  {
    name: 'file',
    async make () {
      const root = await mkdtemp(path.join(os.tmpdir(), 'fastify-sessions-flood-'))
      const dir = path.join(root, 'sessions')
      const archive = new FileArchive({ dir, maxSessions: MAX_SESSIONS, maxNewSessions: MAX_NEW })
      const stored = async () => readdirSync(dir).filter((name) => ID_DIR.test(name)).length
      return { archive, stored, cleanup: () => rm(root, { recursive: true, force: true }) }
    }
  },
  {
    name: 'redis',
    async make (t) {
      if (!await redisAnswers()) {
        if (process.env['CI'] === 'true') throw new Error(`Redis is required under CI: nothing answers at ${REDIS_URL}`)
        t.comment(`no Redis at ${REDIS_URL}: the Redis flood is left out; start one with redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no`)
        return undefined
      }
      const prefix = `fastify-sessions-flood:${process.pid}:`
      const client = new Redis(REDIS_URL)
      const archive = new RedisArchive({ url: REDIS_URL, prefix, maxSessions: MAX_SESSIONS, maxNewSessions: MAX_NEW })
      const stored = async () => (await client.keys(`${prefix}{*`)).length
      const cleanup = async () => {
        const keys = await client.keys(`${prefix}*`)
        if (keys.length > 0) await client.del(...keys)
        await client.quit()
      }
      return { archive, stored, cleanup }
    }
  }
]

for (const kind of archives) {
  t.test(`${kind.name} archive: ${FLOOD} cookieless writes beside ${ESTABLISHED} established users`, { timeout: 300_000 }, async (t) => {
    const made = await kind.make(t)
    if (made === undefined) return
    const { archive, stored, cleanup } = made
    t.teardown(cleanup)
    const app = Fastify()
    await app.register(fastifySessions, { secret: SECRET, mode: 'archive', archive })
    app.post('/visit', async (request) => {
      request.session.set('visits', (request.session.get('visits') ?? 0) + 1)
      return { user: request.session.get('user') ?? null }
    })
    app.post('/login', async (request) => {
      await request.session.regenerate()
      request.session.set('user', request.query.user)
      return { ok: true }
    })
    app.get('/me', async (request) => ({ user: request.session.get('user') ?? null }))
    t.teardown(() => app.close())
    const origin = await app.listen({ host: '127.0.0.1', port: 0 })
    const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY })
    t.teardown(() => agent.destroy())
    const request = (url, method, cookie) => send(agent, `${origin}${url}`, method, cookie)

    // Established users: logged in, and back once, so their browsers presented the cookie.
    const users = []
    for (let i = 0; i < ESTABLISHED; i++) {
      const login = await request(`/login?user=u${i}`, 'POST')
      const back = await request('/me', 'GET', login.cookie)
      if (back.body.user !== `u${i}`) throw new Error(`user u${i} did not get its session`)
      users.push({ name: `u${i}`, cookie: login.cookie })
    }
    const baseline = await heapNow()

    const progress = { sent: 0 }
    let refused = 0
    let peak = 0
    const lost = new Set()
    const started = Date.now()
    const going = () => progress.sent < FLOOD && Date.now() - started < MAX_SECONDS * 1000
    const flood = Array.from({ length: CONCURRENCY - 8 }, async () => {
      while (going()) {
        progress.sent++
        const answer = await request('/visit', 'POST')
        if (answer.status !== 200) refused++
      }
    })
    const regulars = Array.from({ length: 8 }, async (_, lane) => {
      let round = 0
      while (going()) {
        const user = users[(round++ * 8 + lane) % users.length]
        const answer = await request('/visit', 'POST', user.cookie)
        if (answer.body.user !== user.name) lost.add(user.name)
        if (answer.cookie !== undefined) user.cookie = answer.cookie
        if (round % 25 === 0) peak = Math.max(peak, await stored())
      }
    })
    await Promise.all([...flood, ...regulars])
    const seconds = (Date.now() - started) / 1000
    peak = Math.max(peak, await stored())
    for (const user of users) {
      const answer = await request('/me', 'GET', user.cookie)
      if (answer.body.user !== user.name) lost.add(user.name)
    }
    const after = await heapNow()
    t.comment(`${kind.name}: ${progress.sent} cookieless writes in ${seconds.toFixed(1)} s (${Math.round(progress.sent / seconds)}/s); ` +
      `at most ${peak} sessions stored (cap ${MAX_SESSIONS}, ${MAX_NEW} new); established users lost: ${lost.size}; ` +
      `heap ${(baseline / 2 ** 20).toFixed(1)} MB before, ${(after / 2 ** 20).toFixed(1)} MB after`)
    t.equal(refused, 0, 'every cookieless request got its answer')
    t.ok(peak <= MAX_SESSIONS, `storage stayed at or under its cap (${peak} of ${MAX_SESSIONS})`)
    t.same([...lost], [], 'no established user lost the session')
    t.ok(after < baseline + 32 * 2 ** 20, 'the heap is back near its baseline')
  })
}
