import type { FastifyReply, FastifyRequest } from 'fastify'
import { findCookie, findNumberedCookies, numberedIndex } from './cookie-parse.js'
import { FST_SESSION_HEADERS_SENT } from './errors.js'
import type { ResolvedOptions } from './options.js'
import { kReply, kState, type Session } from './session.js'

let sameSiteDowngradeLogged = false

/** Logs, once per process, that a `SameSite=None` cookie went out as `SameSite=Lax` over plain HTTP. */
function logSameSiteDowngrade (request: FastifyRequest, name: string): void {
  if (sameSiteDowngradeLogged) return
  sameSiteDowngradeLogged = true
  request.log.warn({ code: 'FST_SESSION_SAMESITE_DOWNGRADED', cookie: name },
    "fastify-sessions: cookie.sameSite is 'none', but a request came over plain HTTP, where the cookie cannot be Secure and " +
    'browsers drop SameSite=None without it; the cookie is sent as SameSite=Lax over HTTP (logged once per process)')
}

/**
 * Builds the `Set-Cookie` values of one cookie. The attributes are fixed at
 * registration, so they are written once; only the value, `Max-Age` and (with
 * `secure: 'auto'`) `Secure` change per response. The string built here is
 * exactly what is sent, which is what the size accounting measures.
 */
export class CookieWriter {
  readonly name: string
  readonly #persistent: boolean
  readonly #secure: boolean | 'auto'
  /** The attributes after `Max-Age` over HTTPS, and where `secure` is not `'auto'`. */
  readonly #attributes: string
  /** The attributes after `Max-Age` over plain HTTP under `secure: 'auto'`. */
  readonly #plainAttributes: string
  readonly #downgrades: boolean

  constructor (name: string, cookie: ResolvedOptions['cookie']) {
    this.name = name
    this.#persistent = cookie.persistent
    this.#secure = cookie.secure
    const attributes = (sameSite: string): string => {
      let list = ''
      if (cookie.domain !== undefined) list += `; Domain=${cookie.domain}`
      list += `; Path=${cookie.path}`
      if (cookie.httpOnly) list += '; HttpOnly'
      if (cookie.partitioned) list += '; Partitioned'
      return `${list}; SameSite=${sameSite[0]?.toUpperCase()}${sameSite.slice(1)}`
    }
    const configured = attributes(cookie.sameSite)
    this.#attributes = cookie.secure === false ? configured : `${configured}; Secure`
    // Browsers drop a SameSite=None cookie that is not Secure, so over plain
    // HTTP such a cookie would never stick: it goes out as Lax there instead.
    this.#downgrades = cookie.secure === 'auto' && cookie.sameSite === 'none'
    this.#plainAttributes = this.#downgrades ? attributes('lax') : configured
  }

  /** The cookie carrying `value` for `maxAge` seconds; with `persistent: false`, until the browser closes. */
  set (request: FastifyRequest, value: string, maxAge: number, name = this.name): string {
    return `${name}=${value}${this.#persistent ? `; Max-Age=${maxAge}` : ''}${this.#attributesFor(request)}`
  }

  /** The cookie that tells the browser to drop it: same name, path and domain. */
  clear (request: FastifyRequest, name = this.name): string {
    return `${name}=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT${this.#attributesFor(request)}`
  }

  #attributesFor (request: FastifyRequest): string {
    if (this.#secure !== 'auto' || request.protocol === 'https') return this.#attributes
    if (this.#downgrades) logSameSiteDowngrade(request, this.name)
    return this.#plainAttributes
  }
}

/** Reads one cookie of the request, with `@fastify/cookie`'s parsed cookies when it has run. */
export function readCookie (request: FastifyRequest, name: string): string | undefined {
  const cookies = (request as { cookies?: Record<string, unknown> | null }).cookies
  const header = request.headers.cookie
  const value = cookies != null ? cookies[name] : header === undefined ? undefined : findCookie(header, name)
  // A name such as "constructor" finds an inherited function when the cookie is absent.
  return typeof value === 'string' ? value : undefined
}

/** The request's cookies named `prefix` then a number, as `[index, value]` pairs, in no particular order. */
export function readNumberedCookies (request: FastifyRequest, prefix: string): Array<[number, string]> {
  const cookies = (request as { cookies?: Record<string, unknown> | null }).cookies
  if (cookies == null) {
    const header = request.headers.cookie
    return header === undefined ? [] : findNumberedCookies(header, prefix)
  }
  const found: Array<[number, string]> = []
  for (const name of Object.keys(cookies)) {
    const index = name.startsWith(prefix) ? numberedIndex(name, prefix) : undefined
    if (index !== undefined) found.push([index, String(cookies[name])])
  }
  return found
}

function cookieList (header: number | string | string[] | undefined): string[] {
  if (header === undefined) return []
  return Array.isArray(header) ? header : [String(header)]
}

/**
 * Decides the session's `Set-Cookie` values: its cookie, and the cookies it
 * clears or fills besides when it overflows. An explicit `save()`, `destroy()`
 * or `regenerate()` also writes them onto the raw response at once, for
 * replies that bypass `onSend`; `onSend` then hands them to Fastify, which
 * sends them once.
 */
export function emitCookie (session: Session, cookies: readonly string[], explicit: boolean): void {
  const state = session[kState]
  state.setCookie = cookies
  if (!explicit) return
  const raw = session[kReply].raw
  if (raw.headersSent) throw new FST_SESSION_HEADERS_SENT()
  const previous = state.rawCookie
  const others = cookieList(raw.getHeader('set-cookie')).filter((item) => previous?.includes(item) !== true)
  raw.setHeader('set-cookie', [...others, ...cookies])
  // A reply that bypasses onSend gets the same privacy as one that does not.
  if (!raw.hasHeader('cache-control') && !session[kReply].hasHeader('cache-control')) raw.setHeader('cache-control', 'private, no-cache="set-cookie"')
  state.rawCookie = cookies
}

/**
 * In `onSend`: hands the session's cookie to Fastify. Fastify's own
 * `Set-Cookie` headers replace any on the raw response when it writes the
 * head, so cookies found there (an explicit save's, or the handler's own)
 * are gathered into Fastify's headers with the rest, the session's once.
 */
export function sendCookie (session: Session, reply: FastifyReply): void {
  const state = session[kState]
  const cookies = state.setCookie
  const onRaw = state.rawCookie
  if (cookies === undefined && onRaw === undefined) return
  state.rawCookie = undefined
  const raw = reply.raw
  if (onRaw === undefined && !raw.hasHeader('set-cookie')) {
    const list = cookies as readonly string[]
    reply.header('set-cookie', list.length === 1 ? list[0] : list)
    return
  }
  const rawCookies = cookieList(raw.getHeader('set-cookie'))
  raw.removeHeader('set-cookie')
  const own = cookieList(reply.getHeader('set-cookie'))
  const all = [...own, ...rawCookies.filter((item) => !own.includes(item))].filter((item) => onRaw?.includes(item) !== true)
  if (cookies !== undefined) all.push(...cookies)
  reply.removeHeader('set-cookie')
  if (all.length > 0) reply.header('set-cookie', all)
}
