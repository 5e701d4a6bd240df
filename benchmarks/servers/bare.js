// Plain Fastify: the same routes and handler work, with a session that is a
// constant object, so every other server is measured against this floor.
import Fastify from 'fastify'
import { PAYLOAD, serve } from '../bench-server.js'

const session = {
  get: (key) => PAYLOAD[key],
  set () {}
}

await serve(Fastify(), () => session)
