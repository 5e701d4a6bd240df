import type { FastifyReply, FastifyRequest } from 'fastify'
import { findCookie } from './cookie-parse.js'
import { FST_SESSION_HEADERS_SENT } from './errors.js'
import type { ResolvedOptions } from './options.js'
import { kReply, kState, type Session } from './session.js'

/**
 * Builds the `Set-Cookie` values of one cookie. The attributes are fixed at
 * registration, so they are written once; only the value, `Max-Age` and (with
 * `secure: 'auto'`) `Secure` change per response. The string built here is
 * exactly what is sent, which is what the size accounting measures.
 */
export class CookieWriter {
  readonly name: string
  readonly #attributes: string
  readonly #secure: boolean | 'auto'

  constructor (name: string, cookie: ResolvedOptions['cookie']) {
    this.name = name
    let attributes = ''
    if (cookie.domain !== undefined) attributes += `; Domain=${cookie.domain}`
    attributes += `; Path=${cookie.path}`
    if (cookie.httpOnly) attributes += '; HttpOnly'
    if (cookie.partitioned) attributes += '; Partitioned'
    attributes += `; SameSite=${cookie.sameSite[0]?.toUpperCase()}${cookie.sameSite.slice(1)}`
    this.#attributes = attributes
    this.#secure = cookie.secure
  }

  /** The cookie carrying `value` for `maxAge` seconds. */
  set (request: FastifyRequest, value: string, maxAge: number): string {
    return `${this.name}=${value}; Max-Age=${maxAge}${this.#attributes}${this.#isSecure(request) ? '; Secure' : ''}`
  }

  /** The cookie that tells the browser to drop it: same name, path and domain. */
  clear (request: FastifyRequest): string {
    return `${this.name}=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT${this.#attributes}${this.#isSecure(request) ? '; Secure' : ''}`
  }

  #isSecure (request: FastifyRequest): boolean {
    return this.#secure === 'auto' ? request.protocol === 'https' : this.#secure
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

function cookieList (header: number | string | string[] | undefined): string[] {
  if (header === undefined) return []
  return Array.isArray(header) ? header : [String(header)]
}

/**
 * Decides the session's `Set-Cookie` value. An explicit `save()`, `destroy()` or
 * `regenerate()` also writes it onto the raw response at once, for replies that
 * bypass `onSend`; `onSend` then hands it to Fastify, which sends it once.
 */
export function emitCookie (session: Session, cookie: string, explicit: boolean): void {
  const state = session[kState]
  state.setCookie = cookie
  if (!explicit) return
  const raw = session[kReply].raw
  if (raw.headersSent) throw new FST_SESSION_HEADERS_SENT()
  const others = cookieList(raw.getHeader('set-cookie')).filter((item) => item !== state.rawCookie)
  raw.setHeader('set-cookie', [...others, cookie])
  state.rawCookie = cookie
}

/**
 * In `onSend`: hands the session's cookie to Fastify. Fastify's own
 * `Set-Cookie` headers replace any on the raw response when it writes the
 * head, so cookies found there (an explicit save's, or the handler's own)
 * are gathered into Fastify's headers with the rest, the session's once.
 */
export function sendCookie (session: Session, reply: FastifyReply): void {
  const state = session[kState]
  const cookie = state.setCookie
  const onRaw = state.rawCookie
  if (cookie === undefined && onRaw === undefined) return
  state.rawCookie = undefined
  const raw = reply.raw
  if (onRaw === undefined && !raw.hasHeader('set-cookie')) {
    reply.header('set-cookie', cookie as string)
    return
  }
  const rawCookies = cookieList(raw.getHeader('set-cookie'))
  raw.removeHeader('set-cookie')
  const own = cookieList(reply.getHeader('set-cookie'))
  const all = [...own, ...rawCookies.filter((item) => !own.includes(item))].filter((item) => item !== onRaw)
  if (cookie !== undefined) all.push(cookie)
  reply.removeHeader('set-cookie')
  if (all.length > 0) reply.header('set-cookie', all)
}
