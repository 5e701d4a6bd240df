// iron-session 8 inside Fastify routes, as its documentation uses it in Node:
// `getIronSession(req, res, options)` on the raw request and response, in the
// routes that use the session, and an explicit `save()` when one changed it.
import { randomBytes } from 'node:crypto'
import Fastify from 'fastify'
import { getIronSession } from 'iron-session'
import { serve } from '../bench-server.js'

const options = {
  password: randomBytes(32).toString('base64url'),
  cookieName: 'session',
  ttl: 86_400,
  cookieOptions: { path: '/', httpOnly: true, sameSite: 'lax', secure: false }
}

const kSession = Symbol('iron-session')

async function load (request, reply) {
  const data = await getIronSession(request.raw, reply.raw, options)
  request[kSession] = {
    changed: false,
    data,
    get: (key) => data[key],
    set (key, value) {
      data[key] = value
      this.changed = true
    }
  }
}

// iron-session writes Set-Cookie on the raw response, which Fastify merges into its own headers.
async function save (request) {
  const session = request[kSession]
  if (session.changed) await session.data.save()
}

const app = Fastify()
// Only the routes that use the session pay for it, as with getIronSession called in a handler.
app.addHook('onRoute', (route) => {
  if (route.url === '/untouched') return
  route.preHandler = load
  route.onSend = save
})
await serve(app, (request) => request[kSession])
