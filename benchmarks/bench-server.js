// What every benchmark server shares: the session payload, the routes, the
// listener, and the measurement window that run.js opens and closes over IPC.

/** About 50 bytes of JSON: what `/__setup` and `/new` store. */
export const PAYLOAD = Object.freeze({ user: Object.freeze({ id: '42', name: 'Ada Lovelace' }), visits: 3 })

function createSession (session) {
  session.set('user', PAYLOAD.user)
  session.set('visits', PAYLOAD.visits)
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
 */
export async function serve (app, sessionOf) {
  app.get('/__setup', async (request) => createSession(sessionOf(request)))
  app.get('/new', async (request) => createSession(sessionOf(request)))
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
  process.on('message', (message) => {
    if (message?.type === 'start') {
      windowStart = process.cpuUsage()
      process.send({ type: 'started' })
    } else if (message?.type === 'stop') {
      const cpu = process.cpuUsage(windowStart)
      // maxRSS is the process's peak so far, in kilobytes: it cannot be reset per window.
      process.send({ type: 'stopped', cpu, maxRssKb: process.resourceUsage().maxRSS })
    }
  })
  // A server never outlives the harness that forked it.
  process.on('disconnect', () => process.exit(0))
  process.send({ type: 'ready', port: app.server.address().port })
}
