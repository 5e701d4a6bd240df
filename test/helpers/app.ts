import Fastify, { type FastifyInstance, type FastifyServerOptions, type LightMyRequestResponse } from 'fastify'
import type { Test } from 'tap'
import { fastifySessions, type FastifySessionsOptions } from '../../lib/index.js'

/** A secret of the minimum length, for tests. */
export const SECRET = 'a-test-secret-that-is-32-chars!!'
export const OTHER_SECRET = 'another-test-secret-of-32-chars!'

/** A Fastify app with the plugin registered, closed when the test ends. */
export async function buildApp (
  t: Test,
  options: Partial<FastifySessionsOptions> = {},
  server: FastifyServerOptions = {}
): Promise<FastifyInstance> {
  const app = Fastify(server)
  t.teardown(() => app.close())
  await app.register(fastifySessions, { secret: SECRET, ...options })
  return app
}

/** The `Set-Cookie` values of a response, always as a list. */
export function setCookies (response: LightMyRequestResponse): string[] {
  const header = response.headers['set-cookie']
  if (header === undefined) return []
  return Array.isArray(header) ? header : [header]
}

/** The value of the named cookie that a response sets, or undefined. */
export function cookieValue (response: LightMyRequestResponse, name = 'session'): string | undefined {
  return response.cookies.find((cookie) => cookie.name === name)?.value
}
