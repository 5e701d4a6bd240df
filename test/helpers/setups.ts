import { MemoryArchive, type FastifySessionsOptions } from '../../lib/index.js'

/** Where a test's sessions live: a label, the cookie that carries them, and the plugin options (a fresh archive each time). */
export interface Setup {
  readonly label: string
  readonly name: string
  readonly options: () => Partial<FastifySessionsOptions>
}

export const COOKIE_MODE: Setup = { label: 'cookie mode', name: 'session', options: () => ({}) }
export const REVOCABLE_COOKIE_MODE: Setup = { label: 'revocable cookie mode', name: 'session', options: () => ({ mode: 'cookie', revocable: true, archive: new MemoryArchive() }) }
export const ARCHIVE_MODE: Setup = { label: 'archive mode', name: 'session-id', options: () => ({ mode: 'archive', archive: new MemoryArchive() }) }
