import createError from '@fastify/error'

/** An error this package throws: an `Error` with its `FST_SESSION_*` code and the HTTP status a request failing with it gets. */
export interface FastifySessionsError extends Error {
  code: string
  statusCode: number
}

/**
 * One error's constructor, given its arguments: `new FST_SESSION_X(...args)`
 * (or without `new`) and `error instanceof FST_SESSION_X`. Each error below
 * is declared with it rather than with the type `@fastify/error` infers,
 * which lives in that package's namespace: an emitted `errors.d.ts` naming it
 * fails under `"moduleResolution": "bundler"`, which cannot see the namespace
 * of a CommonJS `export =` through a default import (TS2503).
 */
export interface FastifySessionsErrorConstructor<Args extends unknown[] = []> {
  new (...args: Args): FastifySessionsError
  (...args: Args): FastifySessionsError
  readonly prototype: FastifySessionsError
}

/** A plugin option is missing, of the wrong type or out of range. Fails `app.ready()`. */
export const FST_SESSION_INVALID_OPTION: FastifySessionsErrorConstructor<[option: string, problem: string]> = createError(
  'FST_SESSION_INVALID_OPTION',
  'fastify-sessions: option "%s" %s',
  500
)

/** A secret is shorter than 32 characters. Fails `app.ready()`. */
export const FST_SESSION_SECRET_TOO_SHORT: FastifySessionsErrorConstructor<[where: string, length: number]> = createError(
  'FST_SESSION_SECRET_TOO_SHORT',
  'fastify-sessions: %s is %s characters long; a secret needs at least 32 random characters (try `openssl rand -base64 32`)',
  500
)

/** A value given to `session.set()` (or `flash()`) cannot be stored. Thrown by `set()` itself. */
export const FST_SESSION_UNSERIALIZABLE: FastifySessionsErrorConstructor<[key: string, problem: string]> = createError(
  'FST_SESSION_UNSERIALIZABLE',
  'fastify-sessions: the value for session key "%s" cannot be stored: %s',
  500
)

/** The sealed cookie would exceed the size limit; nothing was sent. */
export const FST_SESSION_COOKIE_TOO_LARGE: FastifySessionsErrorConstructor<[name: string, bytes: number, limit: number]> = createError(
  'FST_SESSION_COOKIE_TOO_LARGE',
  'fastify-sessions: the session cookie "%s" would be %s bytes, over the limit of %s; store less in the session or use archive mode',
  500
)

/** `save()` was called after the response headers had left. */
export const FST_SESSION_HEADERS_SENT: FastifySessionsErrorConstructor = createError(
  'FST_SESSION_HEADERS_SENT',
  'fastify-sessions: the response headers were already sent; call `await request.session.save()` before writing the first byte',
  500
)

/** The archive could not be reached or failed; the request gets a 503 and no cookie. */
export const FST_SESSION_ARCHIVE_UNAVAILABLE: FastifySessionsErrorConstructor<[problem: string]> = createError(
  'FST_SESSION_ARCHIVE_UNAVAILABLE',
  'fastify-sessions: the session archive is unavailable: %s',
  503
)

/** The file archive's disk is full (ENOSPC, EDQUOT). */
export const FST_SESSION_ARCHIVE_FULL: FastifySessionsErrorConstructor = createError(
  'FST_SESSION_ARCHIVE_FULL',
  'fastify-sessions: no space left to store sessions; free disk space or move the file archive\'s dir',
  503
)

/**
 * The file archive may not read or write its directory (EACCES, EPERM, EROFS),
 * or refuses to: the directory belongs to another user, or group or others
 * may write to it.
 */
export const FST_SESSION_ARCHIVE_DENIED: FastifySessionsErrorConstructor = createError(
  'FST_SESSION_ARCHIVE_DENIED',
  'fastify-sessions: permission denied in the file archive\'s dir, or the dir is not safe to use; make it the server\'s user\'s own and closed to others (`chown <user> <dir> && chmod 700 <dir>`)',
  503
)

/** Any other input/output failure of the file archive; the message gives the system error's code. */
export const FST_SESSION_ARCHIVE_IO: FastifySessionsErrorConstructor<[code: string]> = createError(
  'FST_SESSION_ARCHIVE_IO',
  'fastify-sessions: the file archive failed (%s); check its dir and the disk',
  503
)

/**
 * A built-in archive holds `maxSessions` sessions and none of them is new
 * enough to make room: a session that was never stored cannot be stored now.
 * The plugin serves such a request without storing its session (no cookie,
 * one warning); sessions already stored are never refused.
 */
export const FST_SESSION_ARCHIVE_AT_CAPACITY: FastifySessionsErrorConstructor = createError(
  'FST_SESSION_ARCHIVE_AT_CAPACITY',
  'fastify-sessions: the session archive holds its maximum of sessions; raise its maxSessions or shorten maxAge',
  503
)

/** A domain or key name that is not safe to use as a path or store key. */
export const FST_SESSION_ARCHIVE_INVALID_NAME: FastifySessionsErrorConstructor<[kind: string, name: string]> = createError(
  'FST_SESSION_ARCHIVE_INVALID_NAME',
  'fastify-sessions: %s "%s" is not a valid archive name (letters, digits, "-" and "_" only)',
  500
)

/** `session.set()` would make the stored session larger than the plugin's `maxSize`. Thrown by `set()` itself. */
export const FST_SESSION_TOO_LARGE: FastifySessionsErrorConstructor<[key: string, bytes: number, limit: number]> = createError(
  'FST_SESSION_TOO_LARGE',
  'fastify-sessions: setting session key "%s" would make the session %s bytes, over maxSize (%s); store less in the session, or raise maxSize',
  500
)

/** A property was assigned on `request.session`: values go through `set()`. */
export const FST_SESSION_PROPERTY_WRITE: FastifySessionsErrorConstructor<[name: string]> = createError(
  'FST_SESSION_PROPERTY_WRITE',
  'fastify-sessions: request.session is not a plain object, so "%s" would not be saved; call request.session.set(key, value)',
  500
)

/** `request.session` was read where the route has no session. */
export const FST_SESSION_NOT_ENABLED: FastifySessionsErrorConstructor<[where: string]> = createError(
  'FST_SESSION_NOT_ENABLED',
  'fastify-sessions: request.session is not available %s',
  500
)

/** A session method was called with an argument it cannot use. */
export const FST_SESSION_INVALID_ARGUMENT: FastifySessionsErrorConstructor<[call: string, problem: string]> = createError(
  'FST_SESSION_INVALID_ARGUMENT',
  'fastify-sessions: %s %s',
  500
)

/** `app.sessions` was called while cookie-mode sessions keep no server-side record. */
export const FST_SESSION_NOT_REVOCABLE: FastifySessionsErrorConstructor = createError(
  'FST_SESSION_NOT_REVOCABLE',
  'fastify-sessions: cookie-mode sessions are stateless, so they cannot be listed or revoked; register the plugin with revocable: true (or mode: \'archive\')',
  500
)
