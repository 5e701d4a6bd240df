import createError from '@fastify/error'

/** A plugin option is missing, of the wrong type or out of range. Fails `app.ready()`. */
export const FST_SESSION_INVALID_OPTION = createError<[option: string, problem: string]>(
  'FST_SESSION_INVALID_OPTION',
  'fastify-sessions: option "%s" %s',
  500
)

/** A secret is shorter than 32 characters. Fails `app.ready()`. */
export const FST_SESSION_SECRET_TOO_SHORT = createError<[where: string, length: number]>(
  'FST_SESSION_SECRET_TOO_SHORT',
  'fastify-sessions: %s is %s characters long; a secret needs at least 32 random characters (try `openssl rand -base64 32`)',
  500
)

/** A value given to `session.set()` (or `flash()`) cannot be stored. Thrown by `set()` itself. */
export const FST_SESSION_UNSERIALIZABLE = createError<[key: string, problem: string]>(
  'FST_SESSION_UNSERIALIZABLE',
  'fastify-sessions: the value for session key "%s" cannot be stored: %s',
  500
)

/** The sealed cookie would exceed the size limit; nothing was sent. */
export const FST_SESSION_COOKIE_TOO_LARGE = createError<[name: string, bytes: number, limit: number]>(
  'FST_SESSION_COOKIE_TOO_LARGE',
  'fastify-sessions: the session cookie "%s" would be %s bytes, over the limit of %s; store less in the session or use archive mode',
  500
)

/** `save()` was called after the response headers had left. */
export const FST_SESSION_HEADERS_SENT = createError(
  'FST_SESSION_HEADERS_SENT',
  'fastify-sessions: the response headers were already sent; call `await request.session.save()` before writing the first byte',
  500
)
