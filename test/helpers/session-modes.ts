import type { LightMyRequestResponse } from 'fastify'
import type { Test } from 'tap'
import type { Archive } from '../../lib/archives/archive.js'
import { FileArchive } from '../../lib/archives/file.js'
import { MemoryArchive } from '../../lib/archives/memory.js'
import type { FastifySessionsOptions } from '../../lib/index.js'
import { buildApp, cookieValue } from './app.js'
import { tempDir } from './temp-dir.js'

/** One place sessions can live, set up afresh for each test. */
export interface SessionModeCase {
  readonly name: string
  /** The cookie that carries the session. */
  readonly cookieName: string
  /** Options that put sessions here, and the archive they use (none in cookie mode). */
  setup (t: Test): Promise<{ options: Partial<FastifySessionsOptions>, archive: Archive | undefined }>
}

export const sessionModes: readonly SessionModeCase[] = [
  {
    name: 'cookie mode',
    cookieName: 'session',
    setup: async () => ({ options: {}, archive: undefined })
  },
  {
    name: 'archive mode, memory archive',
    cookieName: 'session-id',
    setup: async () => {
      const archive = new MemoryArchive()
      return { options: { mode: 'archive', archive }, archive }
    }
  },
  {
    name: 'archive mode, file archive',
    cookieName: 'session-id',
    setup: async (t) => {
      const archive = new FileArchive({ dir: await tempDir(t) })
      return { options: { mode: 'archive', archive }, archive }
    }
  }
]

/** The cookies a next request sends to carry on the session a response set. */
export function carry (mode: SessionModeCase, response: LightMyRequestResponse): Record<string, string> {
  const value = cookieValue(response, mode.cookieName)
  return value === undefined ? {} : { [mode.cookieName]: value }
}

/**
 * Stores `values` with `set()` in one request and returns what `get()` gives
 * for the same keys in the next request, which carries the first one's cookie.
 */
export async function roundTrip (
  t: Test,
  mode: SessionModeCase,
  values: Record<string, unknown>,
  options: Partial<FastifySessionsOptions> = {}
): Promise<Record<string, unknown>> {
  const { options: modeOptions } = await mode.setup(t)
  const app = await buildApp(t, { ...modeOptions, ...options })
  const keys = Object.keys(values)
  let read: Record<string, unknown> = {}
  app.post('/store', async (request) => {
    for (const key of keys) request.session.set(key, values[key])
    return { ok: true }
  })
  app.get('/read', async (request) => {
    read = Object.fromEntries(keys.map((key) => [key, request.session.get(key)]))
    return { isNew: request.session.isNew }
  })
  const stored = await app.inject({ method: 'POST', url: '/store' })
  t.equal(stored.statusCode, 200, 'stored')
  const response = await app.inject({ url: '/read', cookies: carry(mode, stored) })
  t.same(response.json(), { isNew: false }, 'read back from the stored session')
  return read
}
