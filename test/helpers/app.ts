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

/** One parsed log line. */
export type LogLine = Record<string, unknown>

/** A pino destination that keeps every line, for `logger: { level: 'debug', stream }`. */
export class LogCapture {
  readonly lines: LogLine[] = []
  readonly stream = {
    write: (line: string): void => {
      this.lines.push(JSON.parse(line) as LogLine)
    }
  }

  /** Server options that send the app's logs, from `debug` up, here. */
  get server (): FastifyServerOptions {
    return { logger: { level: 'debug', stream: this.stream } }
  }

  /** The lines that carry `code`. */
  withCode (code: string): LogLine[] {
    return this.lines.filter((line) => line['code'] === code)
  }
}

/** Routes that read and write the `user` key, the probes most tests use. */
export function addSessionRoutes (app: FastifyInstance): void {
  app.get('/read', async (request) => ({ isNew: request.session.isNew, user: request.session.get('user') ?? null }))
  app.get('/write', async (request) => {
    const { user = 'ada' } = request.query as { user?: string }
    request.session.set('user', user)
    return { ok: true }
  })
  app.get('/untouched', async () => ({ ok: true }))
}
