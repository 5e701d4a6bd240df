import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify'
import type { Codec } from './codec.js'
import { CookieWriter, emitCookie, readCookie, sendCookie, type ParseCookie } from './cookie-header.js'
import { FST_SESSION_COOKIE_TOO_LARGE } from './errors.js'
import { IronSealer } from './iron-token.js'
import type { ResolvedOptions } from './options.js'
import {
  emptyState, keepOnly, kReply, kRequest, kState, parseStoredSession, resetState, restoreSession, Session, timedOut,
  type SessionEngine, type SessionState
} from './session.js'

/**
 * Sealed-cookie mode: the whole session is an iron token in one cookie. The
 * token is unsealed on the session's first use, not before, so a route that
 * never reads its session pays nothing for the cookie it was sent.
 */
export class CookieMode implements SessionEngine {
  readonly mode = 'cookie' as const
  readonly #options: ResolvedOptions
  readonly #sealer: IronSealer
  readonly #cookie: CookieWriter
  readonly #parse: ParseCookie

  readonly codec: Codec

  constructor (options: ResolvedOptions, codec: Codec, parse: ParseCookie) {
    this.#options = options
    this.codec = codec
    this.#sealer = new IronSealer(options.secrets)
    this.#cookie = new CookieWriter(options.cookieName, options.cookie)
    this.#parse = parse
  }

  start (request: FastifyRequest, reply: FastifyReply): Session {
    return new Session(this, request, reply, emptyState(readCookie(request, this.#cookie.name, this.#parse)))
  }

  decode (session: Session): void {
    const state = session[kState]
    resetState(state)
    state.loaded = true
    const token = state.source
    if (token === undefined || token === '') return
    const rejected = this.#restore(state, token, Date.now(), session[kRequest].log)
    if (rejected !== undefined) {
      session[kRequest].log.debug({ code: 'FST_SESSION_COOKIE_REJECTED', reason: rejected },
        'fastify-sessions: the session cookie was not accepted; starting a fresh session')
    }
  }

  #restore (state: SessionState, token: string, now: number, log: FastifyBaseLogger): string | undefined {
    const unsealed = this.#sealer.unseal(token, now)
    if (unsealed === undefined) return 'not a valid, unexpired seal'
    const payload = parseStoredSession(unsealed.json)
    if (typeof payload === 'string') return payload
    const expired = timedOut(payload, now, this.#options)
    if (expired !== undefined) return expired
    // Sealed with an older secret: reseal with the current one in this response.
    if (restoreSession(state, payload, this.codec, log) && unsealed.secretIndex !== 0) state.touched = true
    return undefined
  }

  async load (session: Session): Promise<void> {
    this.decode(session)
  }

  async save (session: Session): Promise<void> {
    this.#seal(session, true)
  }

  async destroy (session: Session): Promise<void> {
    const state = session[kState]
    resetState(state)
    state.source = undefined
    emitCookie(session, this.#cookie.clear(session[kRequest]), true)
  }

  async regenerate (session: Session, keep: readonly string[] | undefined): Promise<void> {
    keepOnly(session[kState], keep)
  }

  commit (session: Session): void {
    const state = session[kState]
    const rolling = this.#options.rolling
    if (!state.loaded) {
      if (!rolling || state.source === undefined) return
      this.decode(session)
    }
    if (state.changed || state.touched || (rolling && !state.isNew)) this.#seal(session, false)
    sendCookie(session, session[kReply])
  }

  #seal (session: Session, explicit: boolean): void {
    const state = session[kState]
    const request = session[kRequest]
    const now = Date.now()
    if (state.created === 0) state.created = now
    const expiresAt = Math.min(now + this.#options.maxAge * 1000, state.created + this.#options.absoluteTimeout * 1000)
    const token = this.#sealer.seal(JSON.stringify({ c: state.created, t: now, d: state.json }), expiresAt)
    const cookie = this.#cookie.set(request, token, Math.ceil((expiresAt - now) / 1000))
    state.changed = false
    state.touched = false
    // The cookie is ASCII throughout (the token is base64url, the attributes are validated), so length is bytes.
    const { warn, max } = this.#options.cookieSize
    if (cookie.length > max) throw new FST_SESSION_COOKIE_TOO_LARGE(this.#cookie.name, cookie.length, max)
    if (cookie.length >= warn) {
      request.log.warn({ code: 'FST_SESSION_COOKIE_NEAR_LIMIT', cookie: this.#cookie.name, bytes: cookie.length, limit: max },
        'fastify-sessions: the session cookie is near the size limit; store less in the session or use archive mode')
    }
    state.source = token
    emitCookie(session, cookie, explicit)
  }
}
