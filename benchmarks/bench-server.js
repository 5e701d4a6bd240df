// What every benchmark server shares: the session payload, the routes, the
// listener, the measurement window that run.js opens and closes over IPC, and
// the pre-population of an archive for the scaling run.
import { createHmac, randomBytes } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'

const BASE = Object.freeze({ user: Object.freeze({ id: '42', name: 'Ada Lovelace' }), visits: 3 })

/**
 * A session payload whose JSON is exactly `bytes` long (never shorter than the
 * 52-byte base): the base, then `recent`, a list of visited pages as an
 * application would keep it, then a `note` string for the last few bytes.
 */
export function payloadOf (bytes) {
  const payload = { ...BASE }
  if (bytes <= JSON.stringify(payload).length) return Object.freeze(payload)
  const recent = []
  const size = () => JSON.stringify({ ...payload, recent, note: '' }).length
  while (true) {
    recent.push({ path: `/catalogue/items/${10_000 + recent.length * 37}`, at: 1_767_225_600_000 + recent.length * 61_000 })
    if (size() > bytes) {
      recent.pop()
      break
    }
  }
  if (recent.length > 0) payload.recent = recent
  payload.note = ''
  payload.note = 'n'.repeat(bytes - JSON.stringify(payload).length)
  return Object.freeze(payload)
}

/** What `/__setup` and `/new` store: `BENCH_PAYLOAD_BYTES` bytes of JSON (default 52, the base). */
export const PAYLOAD = payloadOf(Number(process.env.BENCH_PAYLOAD_BYTES ?? 0))

let users = 0

function createSession (session, options) {
  for (const [key, value] of Object.entries(PAYLOAD)) session.set(key, value)
  // Each new session logs in a user of its own, as a login route does.
  if (options.bindUser === true) session.bindUser(`user-${users++}`)
  return { ok: true }
}

// A request whose session did not come through must not count as a success.
function missing (what) {
  const error = new Error(`the session has no ${what}`)
  error.statusCode = 500
  return error
}

/**
 * Adds the benchmark routes to `app` and listens on 127.0.0.1, on the port in
 * `PORT` or the first argument (0 or none: any free port).
 * `sessionOf(request)` gives the request's session: anything with `get(key)` and `set(key, value)`.
 * `options.bindUser`: new sessions are bound to a user each (`session.bindUser()`).
 * `options.populate(count)`, for archive-backed servers, stores `count` sessions
 * directly in the archive and resolves with a function that lists a `Cookie`
 * header value for each.
 */
export async function serve (app, sessionOf, options = {}) {
  app.get('/__setup', async (request) => createSession(sessionOf(request), options))
  app.get('/new', async (request) => createSession(sessionOf(request), options))
  app.get('/untouched', async () => ({ ok: true }))

  app.get('/read', async (request) => {
    const user = sessionOf(request).get('user')
    if (user?.name === undefined) throw missing('user')
    return { name: user.name }
  })

  app.get('/write', async (request) => {
    const session = sessionOf(request)
    const visits = session.get('visits')
    if (typeof visits !== 'number') throw missing('visits')
    session.set('visits', visits + 1)
    return { visits: visits + 1 }
  })

  await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT ?? process.argv[2] ?? 0) })
  if (process.send === undefined) {
    console.log(`listening on http://127.0.0.1:${app.server.address().port}`)
    return
  }

  let windowStart = process.cpuUsage()
  let peakReset = false
  process.on('message', (message) => {
    if (message?.type === 'start') {
      // The sessions created for the cookies and the warm-up leave garbage: collected before the window, not in it.
      globalThis.gc?.()
      peakReset = resetPeakRss()
      windowStart = process.cpuUsage()
      process.send({ type: 'started' })
    } else if (message?.type === 'stop') {
      const cpu = process.cpuUsage(windowStart)
      const windowPeak = peakReset ? windowPeakRssKb() : undefined
      process.send({
        type: 'stopped',
        cpu,
        maxRssKb: windowPeak ?? process.resourceUsage().maxRSS,
        peakScope: windowPeak === undefined ? 'process' : 'window'
      })
    } else if (message?.type === 'populate') {
      populateFor(options.populate, message.count).then(
        (result) => process.send({ type: 'populated', ...result }),
        (error) => process.send({ type: 'populated', error: String(error?.stack ?? error) })
      )
    }
  })
  // A server never outlives the harness that forked it.
  process.on('disconnect', () => process.exit(0))
  process.send({ type: 'ready', port: app.server.address().port, payloadBytes: JSON.stringify(PAYLOAD).length })
}

/** Linux: restarts the peak resident set size (VmHWM) from the current one, so that the peak is the window's. */
function resetPeakRss () {
  try {
    writeFileSync('/proc/self/clear_refs', '5')
    return true
  } catch {
    return false
  }
}

function windowPeakRssKb () {
  try {
    return Number(/^VmHWM:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1]) || undefined
  } catch {
    return undefined
  }
}

async function populateFor (populate, count) {
  if (populate === undefined) throw new Error('this server has no archive to populate')
  // Run under `node --expose-gc` so that the memory figures are of live data, not of garbage.
  globalThis.gc?.()
  const before = process.memoryUsage()
  const started = performance.now()
  const cookiesOf = await populate(count)
  const seconds = (performance.now() - started) / 1000
  globalThis.gc?.()
  const after = process.memoryUsage()
  // The cookies are the harness's, not the archive's: made only after the memory was measured.
  return {
    cookies: cookiesOf(),
    seconds,
    rssDeltaBytes: after.rss - before.rss,
    heapDeltaBytes: after.heapUsed + after.external - before.heapUsed - before.external,
    gc: globalThis.gc !== undefined
  }
}

/**
 * A `populate` for fastify-sessions in archive mode: stores one session through
 * `/__setup`, then `count` copies of its stored text under fresh ids, written
 * straight to `archive`, `concurrency` at a time, each with a cookie signed as
 * the plugin signs it.
 */
export function archivePopulator (app, archive, secret, { concurrency = 256 } = {}) {
  return async (count) => {
    // Internal modules, not the package's API: the id format and the stored key
    // must be exactly the plugin's for the sessions to be read back.
    const { IdSigner } = await import('../dist/session-id.js')
    const { SESSION_KEY } = await import('../dist/archive-mode.js')
    const setup = await app.inject('/__setup')
    const cookie = setup.cookies[0]
    if (setup.statusCode !== 200 || cookie === undefined) throw new Error(`/__setup answered ${setup.statusCode} without a cookie`)
    const text = await archive.get(cookie.value.split('.')[0], SESSION_KEY)
    if (text === undefined) throw new Error('the session stored by /__setup is not in the archive')
    const signer = new IdSigner([secret])
    // Ids derived from a counter rather than kept in a list while the archive's memory is measured.
    const seed = randomBytes(32)
    const idOf = (i) => createHmac('sha256', seed).update(String(i)).digest().subarray(0, 24).toString('base64url')
    const ttlMs = 86_400_000
    let next = 0
    async function worker () {
      while (next < count) {
        const i = next++
        await archive.set(idOf(i), SESSION_KEY, text, ttlMs)
      }
    }
    await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker))
    return () => Array.from({ length: count }, (_, i) => `${cookie.name}=${signer.sign(idOf(i))}`)
  }
}

/** A setting that run.js passes in the environment (Redis URL and key prefix, archive directory). */
export function requiredEnv (name) {
  const value = process.env[name]
  if (value === undefined || value === '') throw new Error(`${name} must be set: run this server through run.js`)
  return value
}
