import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify'
import { archiveFailure, isAtCapacity, warnAtCapacity } from './archive-failure.js'
import type { Archive } from './archives/archive.js'
import type { Codec } from './codec.js'
import { CookieWriter, emitCookie, readCookie, sendCookie } from './cookie-header.js'
import { FST_SESSION_COOKIE_TOO_LARGE, FST_SESSION_HEADERS_SENT, FST_SESSION_NOT_REVOCABLE } from './errors.js'
import { IronSealer } from './iron-token.js'
import { KeyedQueue } from './keyed-queue.js'
import type { ResolvedOptions } from './options.js'
import { createSessionId } from './session-id.js'
import {
  collectInPlaceChanges, cookieCannotBeSent, emptyState, expiryOf, keepOnly, kReply, kRequest, kState, parseStoredSession, resetState,
  restoreSession, Session, storedForm, timedOut, lostToRevocation, type SessionEngine, type SessionState
} from './session.js'
import { syncUserIndex, type UserSessions } from './user-sessions.js'

/** The archive key of a revocable cookie session's record. */
export const RECORD_KEY = 'record'

/**
 * How long this process trusts that a revocable session's record still
 * exists, once it has read it: a token revoked on another instance is
 * refused here within this time; on the instance that revoked it, at once.
 */
export const REVOCATION_CHECK_MS = 2000
const CHECKED_MAX = 10_000

/** Cookie mode's part of a session's state: whether `regenerate()` has replaced the session the cookie carried. */
const kRegenerated = Symbol('fastify-sessions.regenerated')
type CookieState = SessionState & { [kRegenerated]?: boolean }

/**
 * Sealed-cookie mode: the whole session is an iron token in one cookie. The
 * token is unsealed on the session's first use, not before, so a route that
 * never reads its session pays nothing for the cookie it was sent.
 *
 * With `revocable`, each session also keeps a small record in the archive,
 * named inside the seal: the token is unsealed when the request arrives and
 * refused once its record is gone, so `destroy()` ends every copy of it.
 */
export class CookieMode implements SessionEngine {
  readonly mode = 'cookie' as const
  readonly options: ResolvedOptions
  readonly maxSize = undefined
  readonly codec: Codec
  readonly #sealer: IronSealer
  readonly #cookie: CookieWriter
  readonly #users: UserSessions
  readonly #archive: () => Archive
  readonly #revocable: boolean
  /** Writes and removals of one record run one at a time in this process. */
  readonly #locks = new KeyedQueue()
  /** Records known to exist, and until when that is trusted (ms). */
  readonly #checked = new Map<string, number>()

  constructor (options: ResolvedOptions, codec: Codec, users: UserSessions, archive: () => Archive) {
    this.options = options
    this.codec = codec
    this.#sealer = new IronSealer(options.secrets)
    this.#cookie = new CookieWriter(options.cookieName, options.cookie)
    this.#users = users
    this.#archive = archive
    this.#revocable = options.revocable
  }

  start (request: FastifyRequest, reply: FastifyReply): Session | Promise<Session> {
    const session = new Session(this, request, reply, emptyState(readCookie(request, this.#cookie.name)))
    if (!this.#revocable || session[kState].source === undefined) return session
    return this.#checkRecord(session).then(() => session)
  }

  newHandle (userId: string): string {
    // Where app.sessions lists sessions (an archive-mode app), a stateless
    // session bound to a user would be missing from the list, and could not be revoked.
    if (!this.#revocable && this.options.mode === 'archive') throw new FST_SESSION_NOT_REVOCABLE()
    return this.#users.newHandle(userId)
  }

  decode (session: Session): void {
    const state = session[kState]
    resetState(state)
    state.loaded = true
    const token = state.source
    if (token === undefined || token === '') return
    const rejected = this.#restore(state, token, Date.now(), session[kRequest].log)
    if (rejected !== undefined) this.#reject(session, rejected)
  }

  #reject (session: Session, reason: string): void {
    resetState(session[kState])
    session[kState].rejected = true
    session[kRequest].log.debug({ code: 'FST_SESSION_COOKIE_REJECTED', reason },
      'fastify-sessions: the session cookie was not accepted; starting a fresh session')
  }

  #restore (state: SessionState, token: string, now: number, log: FastifyBaseLogger): string | undefined {
    const unsealed = this.#sealer.unseal(token, now)
    if (unsealed === undefined) return 'not a valid, unexpired seal'
    const payload = parseStoredSession(unsealed.json)
    if (typeof payload === 'string') return payload
    const expired = timedOut(payload, now, this.options)
    if (expired !== undefined) return expired
    if (this.#revocable && payload.r === undefined) return 'the seal names no revocation record'
    // Sealed with an older secret: reseal with the current one in this response.
    if (restoreSession(state, payload, this.codec, log) && unsealed.secretIndex !== 0) state.touched = true
    return undefined
  }

  /** Revocable sessions: decodes the token now and refuses it when its record is gone. */
  async #checkRecord (session: Session): Promise<void> {
    this.decode(session)
    const state = session[kState]
    if (state.record === undefined) return
    if (!await this.#recordExists(state.record)) this.#reject(session, 'the session was revoked')
  }

  async #recordExists (record: string): Promise<boolean> {
    const now = Date.now()
    const until = this.#checked.get(record)
    if (until !== undefined && until > now) return true
    let text: string | undefined
    try {
      text = await this.#archive().get(record, RECORD_KEY)
    } catch (error) {
      throw archiveFailure(error)
    }
    if (text === undefined) {
      this.#checked.delete(record)
      return false
    }
    if (this.#checked.size >= CHECKED_MAX) this.#checked.delete(this.#checked.keys().next().value as string)
    this.#checked.set(record, now + REVOCATION_CHECK_MS)
    return true
  }

  /** Ends a revocable session: its record goes, so every copy of its token is refused. */
  async revokeRecord (record: string): Promise<void> {
    this.#checked.delete(record)
    try {
      await this.#locks.run(record, () => this.#archive().removeDomain(record))
    } catch (error) {
      throw archiveFailure(error)
    }
  }

  /** When a revocable session's record was last written, or undefined when it is gone. */
  async recordSeen (record: string): Promise<number | undefined> {
    let text: string | undefined
    try {
      text = await this.#archive().get(record, RECORD_KEY)
    } catch (error) {
      throw archiveFailure(error)
    }
    if (text === undefined) return undefined
    const stored = parseStoredSession(text)
    return typeof stored === 'string' ? undefined : stored.t
  }

  async load (session: Session): Promise<void> {
    const state: CookieState = session[kState]
    if (state[kRegenerated] === true) {
      // The cookie the request brought is not this session's any more: what
      // regenerate() started, empty, is what there is to read.
      const replacedRecord = state.replacedRecord
      const retiredHandle = state.retiredHandle
      resetState(state)
      state.replacedRecord = replacedRecord
      state.retiredHandle = retiredHandle
      state.changed = true
      return
    }
    if (!this.#revocable) this.decode(session)
    else await this.#checkRecord(session)
  }

  async save (session: Session): Promise<void> {
    if (cookieCannotBeSent(session)) throw new FST_SESSION_HEADERS_SENT()
    const seal = this.#seal(session, true)
    if (seal !== undefined) await seal
  }

  async destroy (session: Session): Promise<void> {
    const state = session[kState]
    const came = state.source !== undefined
    const records = [state.record, state.replacedRecord].filter((record) => record !== undefined)
    const handles = [state.handle, state.retiredHandle].filter((handle) => handle !== undefined)
    if (this.#revocable) {
      await Promise.all(records.map((record) => this.revokeRecord(record)))
      await Promise.all(handles.map((handle) => this.#users.remove(handle)))
    }
    resetState(state)
    state.source = undefined
    state.replacedRecord = undefined
    state.retiredHandle = undefined
    state.rejected = false
    // A request that brought no session has no cookie to clear.
    if (came) emitCookie(session, this.#cookie.clear(session[kRequest]), true)
    else state.setCookie = undefined
  }

  async regenerate (session: Session, keep: readonly string[] | undefined): Promise<void> {
    const state: CookieState = session[kState]
    keepOnly(state, keep)
    state[kRegenerated] = true
    if (this.#revocable) {
      state.replacedRecord ??= state.record
      state.record = undefined
    }
  }

  commit (session: Session): Promise<void> | void {
    const state = session[kState]
    const rolling = this.options.rolling
    if (!state.loaded) {
      if (!rolling || state.source === undefined) return
      this.decode(session)
    }
    collectInPlaceChanges(state, this.codec)
    if (state.changed || state.touched || state.replacedRecord !== undefined || (rolling && !state.isNew)) {
      const seal = this.#seal(session, false)
      if (seal !== undefined) return seal.then(() => sendCookie(session, session[kReply]))
    } else if (state.rejected && state.setCookie === undefined) {
      // A cookie we refused would come back with every request: clear it once.
      state.setCookie = this.#cookie.clear(session[kRequest])
    }
    sendCookie(session, session[kReply])
  }

  /** Seals the session into its cookie; with `revocable`, writes its record first, and sends nothing when the record was revoked meanwhile. */
  #seal (session: Session, explicit: boolean): Promise<void> | undefined {
    const state = session[kState]
    const request = session[kRequest]
    collectInPlaceChanges(state, this.codec)
    const now = Date.now()
    if (state.created === 0) state.created = now
    if (this.#revocable) state.record ??= createSessionId()
    const expiresAt = expiryOf(state.created, now, state.maxAge, this.options)
    const token = this.#sealer.seal(JSON.stringify(storedForm(state, now)), expiresAt)
    const cookie = this.#cookie.set(request, token, Math.ceil((expiresAt - now) / 1000))
    // The cookie is ASCII throughout (the token is base64url, the attributes are validated), so length is bytes.
    const { warn, max } = this.options.cookieSize
    if (cookie.length > max) throw new FST_SESSION_COOKIE_TOO_LARGE(this.#cookie.name, cookie.length, max)
    if (cookie.length >= warn) {
      request.log.warn({ code: 'FST_SESSION_COOKIE_NEAR_LIMIT', cookie: this.#cookie.name, bytes: cookie.length, limit: max },
        'fastify-sessions: the session cookie is near the size limit; store less in the session or use archive mode')
    }
    const sent = (): void => {
      state.changed = false
      state.touched = false
      state.saved = now
      state.source = token
      state.rejected = false
      ;(state as CookieState)[kRegenerated] = false
      emitCookie(session, cookie, explicit)
    }
    if (!this.#revocable) {
      sent()
      return undefined
    }
    return this.#storeRecord(session, now, expiresAt).then((stored) => {
      if (stored) sent()
    })
  }

  /**
   * Writes a revocable session's record; false, and nothing written, when the
   * session this request read (kept, or replaced by `regenerate()`) was
   * revoked meanwhile, or the archive has no room for a new one. The check and
   * the write hold that record's lock, which a revocation takes too.
   */
  async #storeRecord (session: Session, now: number, expiresAt: number): Promise<boolean> {
    const state = session[kState]
    const record = state.record as string
    const archive = this.#archive()
    const text = JSON.stringify({ c: state.created, t: now, d: {} })
    const ttl = expiresAt - now
    const guard = state.replacedRecord ?? (state.isNew ? undefined : record)
    const creating = guard !== record
    try {
      const written = guard === undefined
        ? (await archive.set(record, RECORD_KEY, text, ttl), true)
        : await this.#locks.run(guard, async () => {
          const current = await archive.get(guard, RECORD_KEY)
          if (current === undefined) return false
          if (!creating) {
            if (archive.compareAndSet !== undefined) return await archive.compareAndSet(record, RECORD_KEY, current, text, ttl)
            await archive.set(record, RECORD_KEY, text, ttl)
            return true
          }
          await archive.set(record, RECORD_KEY, text, ttl)
          this.#checked.delete(guard)
          await archive.removeDomain(guard)
          return true
        })
      if (!written) {
        this.#checked.delete(guard as string)
        state.record = undefined
        lostToRevocation(session)
        return false
      }
      state.replacedRecord = undefined
      await syncUserIndex(this.#users, state, { m: 'c', i: record }, this.options.absoluteTimeout, now)
    } catch (error) {
      if (creating && isAtCapacity(error)) {
        warnAtCapacity(session)
        state.record = undefined
        return false
      }
      throw archiveFailure(error)
    }
    state.retiredHandle = undefined
    state.userChanged = false
    return true
  }
}
