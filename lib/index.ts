export { fastifySessions, fastifySessions as default } from './plugin.js'
export { Session, type SessionData, type SessionKey, type SessionValue } from './session.js'
export type {
  FastifySessionsOptions, SessionCookieOptions, SessionCookieSizeOptions, SessionMode
} from './options.js'
export {
  FST_SESSION_COOKIE_TOO_LARGE, FST_SESSION_HEADERS_SENT, FST_SESSION_INVALID_OPTION,
  FST_SESSION_SECRET_TOO_SHORT, FST_SESSION_UNSERIALIZABLE
} from './errors.js'
