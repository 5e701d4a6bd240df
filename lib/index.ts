export { fastifySessions, fastifySessions as default } from './plugin.js'
export type { Archive } from './archives/archive.js'
export { ExpressStoreArchive, type ExpressStore, type ExpressStoreArchiveOptions, type ExpressStoreSession } from './archives/express-store.js'
export { FileArchive, type FileArchiveOptions } from './archives/file.js'
export { MemoryArchive, type MemoryArchiveOptions } from './archives/memory.js'
export { RedisArchive, type RedisArchiveOptions, type RedisClient } from './archives/redis.js'
export { defineSessionType, MAX_DEPTH, type SessionType } from './codec.js'
export { Session, type SessionData, type SessionKey, type SessionOptions, type SessionRecord, type SessionValue } from './session.js'
export type { DecodeOptions, RevokeUserOptions, SessionsApi } from './sessions-api.js'
export type { SessionInfo } from './user-sessions.js'
export type {
  CookieOverflow, FastifySessionsOptions, SessionCookieOptions, SessionCookieSizeOptions, SessionMode
} from './options.js'
export {
  FST_SESSION_ARCHIVE_AT_CAPACITY, FST_SESSION_ARCHIVE_DENIED, FST_SESSION_ARCHIVE_FULL, FST_SESSION_ARCHIVE_INVALID_NAME, FST_SESSION_ARCHIVE_IO,
  FST_SESSION_ARCHIVE_UNAVAILABLE, FST_SESSION_COOKIE_TOO_LARGE, FST_SESSION_HEADERS_SENT, FST_SESSION_INVALID_ARGUMENT,
  FST_SESSION_INVALID_OPTION, FST_SESSION_NOT_ENABLED, FST_SESSION_NOT_REVOCABLE, FST_SESSION_PROPERTY_WRITE, FST_SESSION_SECRET_TOO_SHORT,
  FST_SESSION_TOO_LARGE, FST_SESSION_UNSERIALIZABLE,
  type FastifySessionsError, type FastifySessionsErrorConstructor
} from './errors.js'
