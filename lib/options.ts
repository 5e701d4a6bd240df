import type { Archive } from './archives/archive.js'
import { BUILT_IN_NAMES, isBuiltInType, type SessionType } from './codec.js'
import { FST_SESSION_INVALID_OPTION, FST_SESSION_SECRET_TOO_SHORT } from './errors.js'

/** Where a route's session lives: sealed in a cookie, or in the archive behind a signed id. */
export type SessionMode = 'cookie' | 'archive'

/** Attributes of the session cookie. */
export interface SessionCookieOptions {
  /** @default '/' */
  path?: string
  /** @default undefined (the cookie goes back to the host that set it, and only to it) */
  domain?: string
  /** @default true */
  httpOnly?: boolean
  /**
   * `'auto'` marks the cookie `Secure` when the request came over HTTPS
   * (`request.protocol`, which honours `X-Forwarded-Proto` only under Fastify's `trustProxy`).
   * @default 'auto'
   */
  secure?: boolean | 'auto'
  /** @default 'lax' */
  sameSite?: 'lax' | 'strict' | 'none'
  /** CHIPS: keep the cookie per top-level site. Needs `secure`. @default false */
  partitioned?: boolean
}

/** Size accounting of the sealed cookie, in bytes of the whole `Set-Cookie` value (name, value and attributes). */
export interface SessionCookieSizeOptions {
  /** At or above this size, each cookie sent logs a `FST_SESSION_COOKIE_NEAR_LIMIT` warning. @default 3584 */
  warn?: number
  /** Above this size the save fails with `FST_SESSION_COOKIE_TOO_LARGE` and nothing is sent (RFC 6265's floor). @default 4096 */
  max?: number
}

/** Options of `app.register(fastifySessions, options)`. */
export interface FastifySessionsOptions {
  /**
   * At least 32 characters, or a list of them: the first seals, every one
   * unseals, so a new secret goes first and an old one stays until the
   * cookies it sealed have expired.
   * @example process.env.SESSION_SECRET
   * @example [process.env.SESSION_SECRET, process.env.OLD_SESSION_SECRET]
   */
  secret: string | readonly string[]
  /** The sealed cookie's name (cookie mode). @default 'session' */
  cookieName?: string
  /** The id cookie's name (archive mode). @default 'session-id' */
  idCookieName?: string
  /** Where sessions live unless a route says otherwise (`config: { session }`). @default 'cookie' */
  mode?: SessionMode
  /**
   * Where archive-mode sessions are stored: any object implementing `Archive`.
   * @default new FileArchive() (`.gen/sessions` under the working directory), created on first use
   * @example new MemoryArchive({ maxSessions: 50_000 })
   */
  archive?: Archive
  /** Idle timeout in seconds, enforced on the server; also the cookie's `Max-Age`. @default 86400 (1 day) */
  maxAge?: number
  /** Seconds from the session's creation after which it ends, however active. @default 604800 (7 days) */
  absoluteTimeout?: number
  /** Re-issue the cookie on every request that has a session, so the idle timeout slides. @default false */
  rolling?: boolean
  /** Cookie attributes. */
  cookie?: SessionCookieOptions
  /** Cookie size warning and limit. */
  cookieSize?: SessionCookieSizeOptions
  /**
   * Classes whose instances sessions may hold, each under a stable name (see
   * `SessionType`). `Date`, `Map`, `Set`, `bigint`, `URL`, `Buffer` and typed
   * arrays are built in; names and classes must be unique and not built in.
   * @default []
   * @example [defineSessionType({ name: 'Money', type: Money, encode: (m) => ({ cents: m.cents }), decode: (json) => new Money(json.cents) })]
   */
  types?: readonly SessionType[]
}

/** The options after validation: complete, normalised and frozen. */
export interface ResolvedOptions {
  readonly secrets: readonly string[]
  readonly cookieName: string
  readonly idCookieName: string
  readonly mode: SessionMode
  readonly archive: Archive | undefined
  readonly maxAge: number
  readonly absoluteTimeout: number
  readonly rolling: boolean
  readonly cookie: Readonly<Required<Omit<SessionCookieOptions, 'domain'>> & { domain: string | undefined }>
  readonly cookieSize: Readonly<Required<SessionCookieSizeOptions>>
  readonly types: readonly SessionType[]
  readonly revocable: boolean
  readonly maxSize: number
}

const MIN_SECRET_LENGTH = 32
const DAY = 24 * 60 * 60
// RFC 6265 section 4.1.1: a cookie name is an RFC 2616 token.
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
// A path is any CHAR but CTLs and ";" (RFC 6265 section 4.1.1); it starts at the root.
const PATH = /^\/[\x20-\x3A\x3C-\x7E]*$/
const DOMAIN = /^\.?(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/
const MODES: readonly string[] = ['cookie', 'archive']
const ARCHIVE_METHODS = ['get', 'set', 'has', 'remove', 'hasDomain', 'removeDomain'] as const
const SAME_SITE: readonly string[] = ['lax', 'strict', 'none']

function fail (option: string, problem: string): never {
  throw new FST_SESSION_INVALID_OPTION(option, problem)
}

function isObject (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function boolean (option: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback
  if (typeof value !== 'boolean') fail(option, 'must be true or false')
  return value
}

function positiveInteger (option: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
    fail(option, 'must be a whole number greater than 0')
  }
  return value
}

function oneOf<T extends string> (option: string, value: unknown, allowed: readonly string[], fallback: T): T {
  if (value === undefined) return fallback
  if (typeof value !== 'string' || !allowed.includes(value)) {
    fail(option, `must be one of ${allowed.map((a) => `'${a}'`).join(', ')}`)
  }
  return value as T
}

function resolveSecrets (secret: unknown): readonly string[] {
  const list = typeof secret === 'string' ? [secret] : secret
  if (!Array.isArray(list) || list.length === 0) {
    fail('secret', 'is required: a string of at least 32 characters, or a non-empty array of them')
  }
  list.forEach((item: unknown, index) => {
    const where = Array.isArray(secret) ? `secret[${index}]` : 'secret'
    if (typeof item !== 'string') fail(where, 'must be a string')
    if (item.length < MIN_SECRET_LENGTH) throw new FST_SESSION_SECRET_TOO_SHORT(where, item.length)
  })
  return Object.freeze([...list as string[]])
}

function resolveCookieName (option: string, value: unknown, fallback: string): string {
  if (value === undefined) return fallback
  if (typeof value !== 'string' || !TOKEN.test(value)) {
    fail(option, 'must be a cookie name: letters, digits and !#$%&\'*+-.^_`|~ only')
  }
  return value
}

function resolveArchive (value: unknown): Archive | undefined {
  if (value === undefined) return undefined
  const archive = value as Record<string, unknown> | null
  if (typeof archive !== 'object' || archive === null || ARCHIVE_METHODS.some((name) => typeof archive[name] !== 'function')) {
    fail('archive', `must implement the Archive contract: ${ARCHIVE_METHODS.join(', ')}`)
  }
  return value as Archive
}

function resolveCookie (value: unknown, cookieNames: readonly string[]): ResolvedOptions['cookie'] {
  if (value !== undefined && !isObject(value)) fail('cookie', 'must be an object')
  const cookie = value ?? {}
  const path = cookie['path'] ?? '/'
  if (typeof path !== 'string' || !PATH.test(path)) fail('cookie.path', 'must start with "/" and hold no ";" or control characters')
  const domain = cookie['domain']
  if (domain !== undefined && (typeof domain !== 'string' || !DOMAIN.test(domain))) {
    fail('cookie.domain', 'must be a host name such as "example.com" (letters, digits, dots and hyphens)')
  }
  const secure = cookie['secure'] ?? 'auto'
  if (secure !== true && secure !== false && secure !== 'auto') fail('cookie.secure', "must be true, false or 'auto'")
  const sameSite = oneOf<'lax' | 'strict' | 'none'>('cookie.sameSite', cookie['sameSite'], SAME_SITE, 'lax')
  const partitioned = boolean('cookie.partitioned', cookie['partitioned'], false)
  if (sameSite === 'none' && secure === false) fail('cookie.sameSite', "'none' needs cookie.secure true or 'auto': browsers drop a SameSite=None cookie that is not Secure")
  if (partitioned && secure === false) fail('cookie.partitioned', "needs cookie.secure true or 'auto': browsers drop a Partitioned cookie that is not Secure")
  // RFC 6265bis cookie prefixes: browsers refuse a prefixed cookie that breaks them.
  // Browsers match the prefixes without regard to case.
  for (const cookieName of cookieNames) {
    const name = cookieName.toLowerCase()
    if (name.startsWith('__secure-') || name.startsWith('__host-')) {
      if (secure !== true) fail('cookie.secure', `must be true for a cookie named "${cookieName}"`)
    }
    if (name.startsWith('__host-')) {
      if (path !== '/') fail('cookie.path', `must be "/" for a cookie named "${cookieName}"`)
      if (domain !== undefined) fail('cookie.domain', `must be left out for a cookie named "${cookieName}"`)
    }
  }
  return Object.freeze({
    path,
    domain,
    httpOnly: boolean('cookie.httpOnly', cookie['httpOnly'], true),
    secure,
    sameSite,
    partitioned
  })
}

function resolveCookieSize (value: unknown): ResolvedOptions['cookieSize'] {
  if (value !== undefined && !isObject(value)) fail('cookieSize', 'must be an object')
  const max = positiveInteger('cookieSize.max', value?.['max'], 4096)
  const warn = positiveInteger('cookieSize.warn', value?.['warn'], Math.min(3584, max))
  if (warn > max) fail('cookieSize.warn', `must not be above cookieSize.max (${max})`)
  return Object.freeze({ warn, max })
}

function resolveTypes (value: unknown): readonly SessionType[] {
  if (value === undefined) return Object.freeze([])
  if (!Array.isArray(value)) fail('types', 'must be an array of { name, type, encode, decode }')
  const names = new Set<string>()
  const classes = new Set<unknown>()
  return Object.freeze(value.map((item: unknown, index) => {
    const where = `types[${index}]`
    if (!isObject(item)) fail(where, 'must be an object: { name, type, encode, decode }')
    const { name, type, encode, decode } = item
    if (typeof name !== 'string' || name === '') fail(`${where}.name`, 'must be a non-empty string')
    if (BUILT_IN_NAMES.has(name)) fail(`${where}.name`, `"${name}" is the name of a built-in type`)
    if (names.has(name)) fail(`${where}.name`, `"${name}" is already the name of another type`)
    if (typeof type !== 'function' || typeof type.prototype !== 'object' || type.prototype === null) fail(`${where}.type`, 'must be a class')
    if (isBuiltInType(type)) fail(`${where}.type`, 'must not be a plain object, an array or a built-in type')
    if (classes.has(type)) fail(`${where}.type`, 'is already registered under another name')
    if (typeof encode !== 'function') fail(`${where}.encode`, 'must be a function')
    if (typeof decode !== 'function') fail(`${where}.decode`, 'must be a function')
    names.add(name)
    classes.add(type)
    return Object.freeze({ name, type, encode, decode }) as SessionType
  }))
}

/** Validates the plugin options once, at registration, and returns them complete and frozen. */
export function resolveOptions (options: unknown): ResolvedOptions {
  if (!isObject(options)) fail('options', 'must be an object with at least a secret')
  const cookieName = resolveCookieName('cookieName', options['cookieName'], 'session')
  const idCookieName = resolveCookieName('idCookieName', options['idCookieName'], 'session-id')
  if (idCookieName === cookieName) fail('idCookieName', `must differ from cookieName ("${cookieName}"): each mode has its own cookie`)
  return Object.freeze({
    secrets: resolveSecrets(options['secret']),
    cookieName,
    idCookieName,
    mode: oneOf<SessionMode>('mode', options['mode'], MODES, 'cookie'),
    archive: resolveArchive(options['archive']),
    maxAge: positiveInteger('maxAge', options['maxAge'], DAY),
    absoluteTimeout: positiveInteger('absoluteTimeout', options['absoluteTimeout'], 7 * DAY),
    rolling: boolean('rolling', options['rolling'], false),
    cookie: resolveCookie(options['cookie'], [cookieName, idCookieName]),
    cookieSize: resolveCookieSize(options['cookieSize']),
    types: resolveTypes(options['types']),
    revocable: boolean('revocable', options['revocable'], false),
    maxSize: positiveInteger('maxSize', options['maxSize'], 65536)
  })
}
