// Fastify with @fastify/cookie and no session: every request's cookies parsed,
// the floor an untouched route of a cookie-session plugin is measured against.
import Fastify from 'fastify'
import fastifyCookie from '@fastify/cookie'
import { PAYLOAD, serve } from '../bench-server.js'

const session = {
  get: (key) => PAYLOAD[key],
  set () {}
}

const app = Fastify()
await app.register(fastifyCookie)
await serve(app, () => session)
