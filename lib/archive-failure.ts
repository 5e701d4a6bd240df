import { FST_SESSION_ARCHIVE_UNAVAILABLE } from './errors.js'
import { kRequest, type Session } from './session.js'

function codeOf (error: unknown): unknown {
  return (error as { code?: unknown } | null)?.code
}

/** The plugin's own errors, the archive ones among them, which say what to do and carry nothing private. */
function isOwnError (error: unknown): boolean {
  const code = codeOf(error)
  return typeof code === 'string' && code.startsWith('FST_SESSION_')
}

/**
 * The plugin's errors keep their own code; anything else an archive throws becomes
 * `FST_SESSION_ARCHIVE_UNAVAILABLE`. A store's own error may quote the command
 * it failed on, hence a session id or data: only its name and code are kept.
 */
export function archiveFailure (error: unknown): Error {
  if (isOwnError(error)) return error as Error
  const name = error instanceof Error ? error.name : typeof error
  const code = codeOf(error)
  const failure = new FST_SESSION_ARCHIVE_UNAVAILABLE(`the archive failed (${typeof code === 'string' ? code : name})`)
  failure.cause = typeof code === 'string' ? { name, code } : { name }
  return failure
}

/** Whether an archive refused to create a session because it holds its maximum of them. */
export function isAtCapacity (error: unknown): boolean {
  return codeOf(error) === 'FST_SESSION_ARCHIVE_AT_CAPACITY'
}

/** A new session that the archive has no room for is served without being stored, with a warning. */
export function warnAtCapacity (session: Session): void {
  session[kRequest].log.warn({ code: 'FST_SESSION_ARCHIVE_AT_CAPACITY' },
    'fastify-sessions: the archive holds its maximum of sessions; this new session was not stored')
}
