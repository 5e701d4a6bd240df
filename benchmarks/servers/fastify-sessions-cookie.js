// fastify-sessions in its default mode: the session sealed as an iron token in one cookie.
import { randomBytes } from 'node:crypto'
import Fastify from 'fastify'
import fastifySessions from 'fastify-sessions'
import { serve } from '../bench-server.js'

const app = Fastify()
await app.register(fastifySessions, { secret: randomBytes(32).toString('base64url'), cookie: { secure: false } })
await serve(app, (request) => request.session)
