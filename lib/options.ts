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
  /**
   * `false` sends the session cookie without `Max-Age`, so the browser drops it
   * when it closes (a "browser-session" cookie, for "remember me" left
   * unticked). `maxAge` and `absoluteTimeout` still end the session on the
   * server. A cookie that clears the session carries `Max-Age=0` either way.
   * @default true
   */
  persistent?: boolean
}

/** Size accounting of the sealed cookie, in bytes of the whole `Set-Cookie` value (name, value and attributes). */
export interface SessionCookieSizeOptions {
  /** At or above this size, each cookie sent logs a `FST_SESSION_COOKIE_NEAR_LIMIT` warning. @default 3584 */
  warn?: number
  /** Above this size the save fails with `FST_SESSION_COOKIE_TOO_LARGE` and nothing is sent (RFC 6265's floor). @default 4096 */
  max?: number
  /**
   * What a cookie-mode save does with a session whose cookie would pass `max`:
   * - `'error'`: the save fails with `FST_SESSION_COOKIE_TOO_LARGE` and nothing is sent;
   * - `'archive'`: the session moves to the archive (the plugin's `archive`, or
   *   the default file archive) under a signed id in the cookie `<cookieName>.id`,
   *   and back into its sealed cookie once that fits in `warn` bytes again;
   * - `'chunk'`: the sealed token is split over the cookies `<cookieName>.0`,
   *   `<cookieName>.1`, ..., each at most `max` bytes, together at most `maxTotal`.
   * @default 'archive' when the plugin is given an `archive`, else 'error'
   */
  overflow?: CookieOverflow
  /**
   * With `overflow: 'chunk'`: the most bytes the chunks may add to the
   * `Cookie` header the browser sends back (names, values and separators).
   * Node refuses requests whose headers pass 16 KiB in all, so at most 12288.
   * @default 8192
   */
  maxTotal?: number
}

/** What a cookie-mode save does with a session too large for its cookie: see `SessionCookieSizeOptions.overflow`. */
export type CookieOverflow = 'error' | 'archive' | 'chunk'

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
  /**
   * Where sessions live unless a route says otherwise (`config: { session }`).
   * Required when both `revocable` and an `archive` are given.
   * @default 'archive' when an `archive` is given, else 'cookie'
   */
  mode?: SessionMode
  /**
   * Where archive-mode sessions are stored: any object implementing `Archive`.
   * Giving one makes `'archive'` the default `mode`.
   * @default new FileArchive() (`.gen/sessions` under the working directory), created on first use
   * @example new MemoryArchive({ maxSessions: 50_000 })
   */
  archive?: Archive
  /**
   * Idle timeout in seconds, enforced on the server; also the cookie's
   * `Max-Age`. Must not be above `absoluteTimeout`.
   * @default 86400 (1 day)
   * @example 30 * 24 * 60 * 60 // "remember me" for 30 days, with absoluteTimeout at least as long
   */
  maxAge?: number
  /** Seconds from the session's creation after which it ends, however active. @default 604800 (7 days) */
  absoluteTimeout?: number
  /**
   * Cookie mode: also keep a small record of each session in the archive, so
   * that `destroy()` revokes that very token (a copy of the cookie no longer
   * works) and a user's sessions can be listed and ended. Given with an
   * `archive`, it needs an explicit `mode`.
   * @default false
   * @example { revocable: true, mode: 'cookie', archive: new RedisArchive({ client }) }
   */
  revocable?: boolean
  /**
   * Archive mode: the most bytes a session's stored JSON may hold, a whole
   * number from 1024 to 16777216 (16 MiB). Cookie mode is bounded by
   * `cookieSize.max` instead.
   * @default 65536 (64 KiB)
   */
  maxSize?: number
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
  /** `'archive'` when an archive was given without a mode. */
  readonly mode: SessionMode
  readonly archive: Archive | undefined
  readonly maxAge: number
  /** Never below `maxAge`. */
  readonly absoluteTimeout: number
  /** Cookie mode: keep a record of each session in the archive, so that it can be revoked and listed. */
  readonly revocable: boolean
  /** Archive mode: the most bytes of a session's stored JSON. */
  readonly maxSize: number
  readonly rolling: boolean
  readonly cookie: Readonly<Required<Omit<SessionCookieOptions, 'domain'>> & { domain: string | undefined }>
  readonly cookieSize: Readonly<Required<SessionCookieSizeOptions>>
  readonly types: readonly SessionType[]
}

const MIN_SECRET_LENGTH = 32
const MINUTE = 60
const HOUR = 60 * MINUTE
const DAY = 24 * HOUR
// Browsers keep a cookie at most 400 days (RFC 6265bis): a longer Max-Age in seconds is most likely milliseconds.
const BROWSER_MAX_AGE = 400 * DAY
const MIN_MAX_SIZE = 1024
const MAX_MAX_SIZE = 16 * 1024 * 1024
// RFC 6265 section 4.1.1: a cookie name is an RFC 2616 token.
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
// A path is any CHAR but CTLs and ";" (RFC 6265 section 4.1.1); it starts at the root.
const PATH = /^\/[\x20-\x3A\x3C-\x7E]*$/
const DOMAIN = /^\.?(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/
const MODES: readonly string[] = ['cookie', 'archive']
const ARCHIVE_METHODS = ['get', 'set', 'has', 'remove', 'hasDomain', 'removeDomain'] as const
const SAME_SITE: readonly string[] = ['lax', 'strict', 'none']
const OVERFLOW: readonly string[] = ['error', 'archive', 'chunk']
/** The most `cookieSize.maxTotal` may be: Node's default `maxHeaderSize` is 16384 bytes for the request line and every header. */
export const MAX_CHUNKED_TOTAL = 12288

/** The names of an options interface, each listed once: an option added to the interface but not here fails to compile. */
function optionNames<T> (names: Record<keyof T, true>): readonly string[] {
  return Object.freeze(Object.keys(names))
}

const TOP_LEVEL = optionNames<FastifySessionsOptions>({
  secret: true,
  cookieName: true,
  idCookieName: true,
  mode: true,
  archive: true,
  maxAge: true,
  absoluteTimeout: true,
  revocable: true,
  maxSize: true,
  rolling: true,
  cookie: true,
  cookieSize: true,
  types: true
})
const COOKIE = optionNames<SessionCookieOptions>({
  path: true,
  domain: true,
  httpOnly: true,
  secure: true,
  sameSite: true,
  partitioned: true,
  persistent: true
})
const COOKIE_SIZE = optionNames<SessionCookieSizeOptions>({ warn: true, max: true, overflow: true, maxTotal: true })

/** An option of another session plugin, and what to write here instead. */
interface PeerOption {
  readonly from: readonly string[]
  readonly advice: string | ((value: unknown) => string)
}

const EXPRESS_STORE_ADVICE = 'an express-session store goes through its adapter: archive: new ExpressStoreArchive(store)'

/** The given value as the start of a duration advice, when it is a whole number of seconds. */
function inSeconds (value: unknown): number | undefined {
  return typeof value === 'number' && Number.isSafeInteger(value) && value > 0 ? value : undefined
}

/** `maxAge: n`, with `absoluteTimeout: n` when n is beyond the default absolute timeout. */
function lifetime (seconds: number): string {
  return seconds > 7 * DAY ? `maxAge: ${seconds}, absoluteTimeout: ${seconds}` : `maxAge: ${seconds}`
}

/** Whether a duration that should be in seconds looks like milliseconds: beyond any cookie's lifetime, or whole minutes of milliseconds. */
function looksLikeMilliseconds (value: number): boolean {
  return value > BROWSER_MAX_AGE || (value >= 1000 * MINUTE && value % (1000 * MINUTE) === 0)
}

/** A number of seconds for people: "7 days", "1 hour", "90 seconds". */
function duration (seconds: number): string {
  const [count, unit] = seconds % DAY === 0 ? [seconds / DAY, 'day'] : seconds % HOUR === 0 ? [seconds / HOUR, 'hour'] : seconds % MINUTE === 0 ? [seconds / MINUTE, 'minute'] : [seconds, 'second']
  return `${count} ${unit}${count === 1 ? '' : 's'}`
}

/** Advice for a duration in seconds or milliseconds, given under another plugin's name. */
function durationAdvice (value: unknown): string {
  const given = inSeconds(value)
  if (given === undefined) return ''
  if (looksLikeMilliseconds(given)) {
    const seconds = Math.max(1, Math.round(given / 1000))
    return `; ${given} looks like milliseconds (${duration(seconds)}): write ${lifetime(seconds)}`
  }
  return `: ${lifetime(given)}`
}

function looksLikeExpressStore (value: unknown): boolean {
  const store = value as Record<string, unknown> | null
  return typeof store === 'object' && store !== null &&
    typeof store['get'] === 'function' && typeof store['set'] === 'function' && typeof store['destroy'] === 'function' &&
    typeof store['hasDomain'] !== 'function'
}

/**
 * The options of @fastify/session, @fastify/secure-session,
 * @mgcrea/fastify-session, iron-session and express-session that this plugin
 * does not have, each with what to write instead: an app moved from one of
 * them fails at registration with that advice rather than losing the option.
 */
const PEER_OPTIONS: ReadonlyMap<string, PeerOption> = new Map<string, PeerOption>([
  ['store', {
    from: ['@fastify/session', '@mgcrea/fastify-session', 'express-session'],
    advice: (value) => looksLikeExpressStore(value)
      ? `sessions are stored by the archive option, and ${EXPRESS_STORE_ADVICE}`
      : 'sessions are stored by the archive option: new RedisArchive({ client }), new MemoryArchive(), new FileArchive() (the default) or an Archive of your own'
  }],
  ['saveUninitialized', {
    from: ['@fastify/session', '@mgcrea/fastify-session', 'express-session'],
    advice: 'sessions are stored only when they change, and a new one only once something is set in it; nothing to set'
  }],
  ['resave', {
    from: ['express-session'],
    advice: 'sessions are stored only when they change, and a new one only once something is set in it; nothing to set'
  }],
  ['cookie.maxAge', {
    from: ['@fastify/session', '@fastify/secure-session', '@mgcrea/fastify-session', 'express-session'],
    advice: (value) => `the cookie's Max-Age is the top-level maxAge, in seconds, which is also the idle timeout${durationAdvice(value)}`
  }],
  ['cookie.expires', {
    from: ['@fastify/session', '@fastify/secure-session', '@mgcrea/fastify-session', 'express-session'],
    advice: 'a cookie has no fixed end date here: the top-level maxAge (seconds) sets its Max-Age each time it is sent, and cookie.persistent: false makes it end with the browser session'
  }],
  ['cookie.signed', {
    from: ['@fastify/cookie'],
    advice: 'id cookies are always signed and session cookies sealed; nothing to set'
  }],
  ['expiry', {
    from: ['@fastify/secure-session'],
    advice: (value) => `the idle timeout and the cookie's Max-Age are maxAge, in seconds as expiry was${durationAdvice(value)}`
  }],
  ['key', {
    from: ['@fastify/secure-session', '@mgcrea/fastify-session'],
    advice: 'write secret instead: a string of at least 32 random characters (try `openssl rand -base64 32`), or a list of them, the newest first'
  }],
  ['salt', {
    from: ['@fastify/secure-session', '@mgcrea/fastify-session'],
    advice: 'no salt is needed: secret is used as it is, and the salts each token carries are derived from it'
  }],
  ['sessionName', {
    from: ['@fastify/secure-session'],
    advice: 'the session is always request.session; nothing to set'
  }],
  ['cookiePrefix', {
    from: ['@fastify/session'],
    advice: 'the id cookie is written as <id>.<signature>, with no prefix; nothing to set'
  }],
  ['idGenerator', {
    from: ['@fastify/session'],
    advice: 'session ids are 192 random bits from the system\'s secure generator, signed with the secret; they cannot be chosen'
  }],
  ['genid', {
    from: ['express-session'],
    advice: 'session ids are 192 random bits from the system\'s secure generator, signed with the secret; they cannot be chosen'
  }],
  ['name', {
    from: ['express-session'],
    advice: "the cookie's name is cookieName in cookie mode (default 'session') and idCookieName in archive mode (default 'session-id')"
  }],
  ['password', {
    from: ['iron-session'],
    advice: 'write secret instead: a string of at least 32 characters, or a list of them, the newest first (iron-session\'s { 2: newer, 1: older } is secret: [newer, older])'
  }],
  ['ttl', {
    from: ['iron-session'],
    advice: (value) => value === 0
      ? 'the idle timeout is maxAge and the lifetime absoluteTimeout, both in seconds; every session ends, so ttl: 0 has no counterpart'
      : `the idle timeout is maxAge and the lifetime absoluteTimeout, both in seconds${durationAdvice(value)}`
  }],
  ['cookieOptions', {
    from: ['iron-session'],
    advice: `write cookie instead (${COOKIE.join(', ')}); its maxAge is the top-level maxAge, in seconds`
  }],
  ['crypto', {
    from: ['@mgcrea/fastify-session'],
    advice: 'cookie-mode sessions are sealed with iron (Fe26.2) and archive ids signed with HMAC-SHA256; neither can be swapped, so nothing to set'
  }],
  ['logBindings', {
    from: ['@mgcrea/fastify-session'],
    advice: 'the plugin logs through request.log, with its bindings; nothing to set'
  }],
  ['algorithm', {
    from: ['@fastify/session'],
    advice: 'ids are signed with HMAC-SHA256, which cannot be changed; nothing to set'
  }],
  ['prefix', {
    from: ['connect-redis', '@fastify/session\'s stores'],
    advice: 'a key prefix belongs to the archive: new RedisArchive({ prefix })'
  }],
  ['unset', {
    from: ['express-session'],
    advice: 'request.session cannot be unset; await request.session.destroy() ends a session and removes what was stored'
  }],
  ['proxy', {
    from: ['express-session'],
    advice: "whether a request came over HTTPS is request.protocol, which trusts X-Forwarded-Proto only under Fastify's own option: Fastify({ trustProxy: true })"
  }]
])

/** A name that may be meant: its full option path, and the peer option it is, if one. */
interface Candidate {
  readonly option: string
  readonly name: string
  readonly peer: PeerOption | undefined
}

function candidates (level: string, names: readonly string[]): readonly Candidate[] {
  const at = (option: string): string => level === '' ? option : `${level}.${option}`
  const list: Candidate[] = names.map((name) => ({ option: at(name), name, peer: undefined }))
  for (const [option, peer] of PEER_OPTIONS) {
    const dot = option.lastIndexOf('.')
    if (option.slice(0, Math.max(dot, 0)) === level) list.push({ option, name: option.slice(dot + 1), peer })
  }
  // At the top level, a cookie attribute or size option given without its object is most likely meant for it.
  if (level === '') {
    list.push(...COOKIE.map((name) => ({ option: `cookie.${name}`, name, peer: undefined })))
    list.push(...COOKIE_SIZE.map((name) => ({ option: `cookieSize.${name}`, name, peer: undefined })))
  }
  return Object.freeze(list)
}

const LEVELS: ReadonlyArray<{ readonly level: string, readonly names: readonly string[], readonly candidates: readonly Candidate[] }> = [
  { level: '', names: TOP_LEVEL, candidates: candidates('', TOP_LEVEL) },
  { level: 'cookie', names: COOKIE, candidates: candidates('cookie', COOKIE) },
  { level: 'cookieSize', names: COOKIE_SIZE, candidates: candidates('cookieSize', COOKIE_SIZE) }
]

/** Edit distance with transpositions (optimal string alignment), ignoring case. */
function distance (a: string, b: string): number {
  const x = a.toLowerCase()
  const y = b.toLowerCase()
  const rows: number[][] = []
  for (let i = 0; i <= x.length; i++) {
    const row = [i]
    for (let j = 1; j <= y.length; j++) {
      if (i === 0) {
        row.push(j)
        continue
      }
      const above = rows[i - 1] as number[]
      const cost = x[i - 1] === y[j - 1] ? 0 : 1
      let best = Math.min((above[j] as number) + 1, (row[j - 1] as number) + 1, (above[j - 1] as number) + cost)
      if (i > 1 && j > 1 && x[i - 1] === y[j - 2] && x[i - 2] === y[j - 1]) best = Math.min(best, (rows[i - 2] as number[])[j - 2] as number + 1)
      row.push(best)
    }
    rows.push(row)
  }
  return (rows[x.length] as number[])[y.length] as number
}

/** Whether one name, of three letters or more, starts the other: `maximum` for `max`, `secretKey` for `secret`. */
function startsOther (a: string, b: string): boolean {
  const [short, long] = a.length < b.length ? [a.toLowerCase(), b.toLowerCase()] : [b.toLowerCase(), a.toLowerCase()]
  return short.length >= 3 && long.startsWith(short)
}

/** The candidate a mistyped name most likely meant, if any is close enough. */
function closest (name: string, list: readonly Candidate[]): Candidate | undefined {
  const limit = name.length <= 4 ? 1 : name.length <= 8 ? 2 : 3
  let best: Candidate | undefined
  let bestDistance = limit + 1
  for (const candidate of list) {
    const d = Math.min(distance(name, candidate.name), startsOther(name, candidate.name) ? limit : Infinity)
    if (d < bestDistance) {
      best = candidate
      bestDistance = d
    }
  }
  return best
}

function peerProblem (peer: PeerOption, value: unknown): string {
  const from = peer.from.length === 1 ? peer.from[0] : `${peer.from.slice(0, -1).join(', ')} and ${peer.from.at(-1)}`
  const advice = typeof peer.advice === 'string' ? peer.advice : peer.advice(value)
  return `is an option of ${from}, not of fastify-sessions: ${advice}`
}

/** Refuses every option name this plugin does not know, at every level, with the name it most likely meant. */
function refuseUnknown (options: Record<string, unknown>): void {
  for (const { level, names, candidates } of LEVELS) {
    const given = level === '' ? options : options[level]
    if (!isObject(given)) continue
    for (const name of Object.keys(given)) {
      if (names.includes(name)) continue
      const option = level === '' ? name : `${level}.${name}`
      const value = given[name]
      const peer = PEER_OPTIONS.get(option)
      if (peer !== undefined) fail(option, peerProblem(peer, value))
      const near = closest(name, candidates)
      if (near?.peer !== undefined) fail(option, `is unknown, and "${near.option}", which it looks like, ${peerProblem(near.peer, value)}`)
      if (near !== undefined) fail(option, `is unknown; did you mean "${near.option}"?`)
      fail(option, `is unknown; the ${level === '' ? '' : `${level} `}options are ${names.join(', ')}`)
    }
  }
}

/** Throws `FST_SESSION_INVALID_OPTION`, which also carries the option's path as `option`. */
function fail (option: string, problem: string): never {
  throw Object.assign(new FST_SESSION_INVALID_OPTION(option, problem), { option })
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
    if (looksLikeExpressStore(archive)) fail('archive', `looks like an express-session store (get, set, destroy), not an Archive: ${EXPRESS_STORE_ADVICE}`)
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
    partitioned,
    persistent: boolean('cookie.persistent', cookie['persistent'], true)
  })
}

function resolveCookieSize (value: unknown, hasArchive: boolean): ResolvedOptions['cookieSize'] {
  if (value !== undefined && !isObject(value)) fail('cookieSize', 'must be an object')
  const max = positiveInteger('cookieSize.max', value?.['max'], 4096)
  const warn = positiveInteger('cookieSize.warn', value?.['warn'], Math.min(3584, max))
  if (warn > max) fail('cookieSize.warn', `must not be above cookieSize.max (${max})`)
  // Moving sessions needs storage every instance shares: only an archive the app chose is assumed to be one.
  const overflow = oneOf<CookieOverflow>('cookieSize.overflow', value?.['overflow'], OVERFLOW, hasArchive ? 'archive' : 'error')
  const maxTotal = positiveInteger('cookieSize.maxTotal', value?.['maxTotal'], 8192)
  if (maxTotal > MAX_CHUNKED_TOTAL) {
    fail('cookieSize.maxTotal', `must be at most ${MAX_CHUNKED_TOTAL}: Node refuses a request whose headers pass 16 KiB in all, and the request line and other headers need room`)
  }
  if (value?.['maxTotal'] !== undefined && overflow !== 'chunk') fail('cookieSize.maxTotal', "applies only with cookieSize.overflow: 'chunk'")
  if (overflow === 'chunk' && maxTotal < max) fail('cookieSize.maxTotal', `must not be below cookieSize.max (${max})`)
  return Object.freeze({ warn, max, overflow, maxTotal })
}

/** Whether `name` is one of the cookies a cookie-mode session named `cookieName` overflows into. */
function isOverflowCookie (cookieName: string, overflow: CookieOverflow, name: string): boolean {
  if (overflow === 'error' || !name.startsWith(`${cookieName}.`)) return false
  const suffix = name.slice(cookieName.length + 1)
  return overflow === 'archive' ? suffix === 'id' : /^\d+$/.test(suffix)
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

function tooLong (maxAge: number, absoluteTimeout: number, byDefault: boolean): string {
  const limit = `absoluteTimeout (${absoluteTimeout}${byDefault ? ', its default' : ''}, ${duration(absoluteTimeout)})`
  const hint = looksLikeMilliseconds(maxAge) && maxAge / 1000 <= absoluteTimeout
    ? `; both are in seconds, and ${maxAge} looks like milliseconds: maxAge: ${Math.round(maxAge / 1000)}`
    : `: a session ends absoluteTimeout seconds after its creation however active it is, so set absoluteTimeout to at least ${maxAge} or lower maxAge`
  return `(${maxAge}, ${duration(maxAge)}) must not be above ${limit}${hint}`
}

function maxSize (value: unknown): number {
  if (value === undefined) return 64 * 1024
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < MIN_MAX_SIZE || value > MAX_MAX_SIZE) {
    fail('maxSize', `must be a whole number of bytes from ${MIN_MAX_SIZE} to ${MAX_MAX_SIZE} (16 MiB)`)
  }
  return value
}

/** Validates the plugin options once, at registration, and returns them complete and frozen. */
export function resolveOptions (options: unknown): ResolvedOptions {
  if (!isObject(options)) fail('options', 'must be an object with at least a secret')
  refuseUnknown(options)
  const cookieName = resolveCookieName('cookieName', options['cookieName'], 'session')
  const idCookieName = resolveCookieName('idCookieName', options['idCookieName'], 'session-id')
  if (idCookieName === cookieName) fail('idCookieName', `must differ from cookieName ("${cookieName}"): each mode has its own cookie`)
  const secrets = resolveSecrets(options['secret'])
  const archive = resolveArchive(options['archive'])
  const maxAge = positiveInteger('maxAge', options['maxAge'], DAY)
  const absoluteTimeout = positiveInteger('absoluteTimeout', options['absoluteTimeout'], 7 * DAY)
  if (maxAge > absoluteTimeout) fail('maxAge', tooLong(maxAge, absoluteTimeout, options['absoluteTimeout'] === undefined))
  const revocable = boolean('revocable', options['revocable'], false)
  // An archive alone means archive mode; with revocable it may be where revocable cookie sessions keep their records.
  if (revocable && archive !== undefined && options['mode'] === undefined) {
    fail('mode', "must be given with revocable and an archive: 'cookie' for sealed cookies whose records the archive keeps, or 'archive'")
  }
  const cookieSize = resolveCookieSize(options['cookieSize'], archive !== undefined)
  if (isOverflowCookie(cookieName, cookieSize.overflow, idCookieName)) {
    fail('idCookieName', `must differ from the cookies "${cookieName}" overflows into (${cookieSize.overflow === 'chunk' ? `${cookieName}.0, ${cookieName}.1, ...` : `${cookieName}.id`})`)
  }

  return Object.freeze({
    secrets,
    cookieName,
    idCookieName,
    mode: oneOf<SessionMode>('mode', options['mode'], MODES, archive === undefined ? 'cookie' : 'archive'),
    archive,
    maxAge,
    absoluteTimeout,
    revocable,
    maxSize: maxSize(options['maxSize']),
    rolling: boolean('rolling', options['rolling'], false),
    cookie: resolveCookie(options['cookie'], [cookieName, idCookieName]),
    cookieSize,
    types: resolveTypes(options['types'])
  })
}
