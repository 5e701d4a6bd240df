import type { FastifyReply, FastifyRequest } from 'fastify'
import { archiveFailure, isAtCapacity, warnAtCapacity } from './archive-failure.js'
import type { ArchiveMode } from './archive-mode.js'
import type { Archive } from './archives/archive.js'
import type { Codec, Json } from './codec.js'
import { CookieWriter, emitCookie, readCookie, readNumberedCookies, sendCookie } from './cookie-header.js'
import { FST_SESSION_COOKIE_TOO_LARGE, FST_SESSION_HEADERS_SENT, FST_SESSION_NOT_REVOCABLE } from './errors.js'
import { IronSealer } from './iron-token.js'
import { KeyedQueue } from './keyed-queue.js'
import type { CookieOverflow, ResolvedOptions } from './options.js'
import { createSessionId } from './session-id.js'
import {
  collectInPlaceChanges, cookieCannotBeSent, emptyState, expiryOf, isUnread, keepOnly, kEngine, kReply, kRequest, kState, parseStoredSession, resetState,
  restoreSession, Session, storedForm, timedOut, lostToRevocation, type SessionEngine, type SessionState, type StoredSession
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

/** The most chunks a session is split over; more of them in a request are refused. */
const MAX_CHUNKS = 16
/** The most stray chunks one response clears: a request crammed with them gets no answer as large. */
const MAX_CLEARED = 2 * MAX_CHUNKS

/** Cookie mode's part of a session's state: whether `regenerate()` has replaced the session the cookie carried. */
const kRegenerated = Symbol('fastify-sessions.regenerated')
/** What else of this session the request brought, to clear when the response no longer uses it. */
const kBrought = Symbol('fastify-sessions.brought')
type CookieState = SessionState & { [kRegenerated]?: boolean, [kBrought]?: Brought }

/** The overflow cookies a request brought. */
interface Brought {
  /** Whether it brought the session's own cookie. */
  single: boolean
  /** The indexes of the chunks it brought, the lowest `MAX_CLEARED` of them: what a response clears when it no longer uses them. */
  chunks: readonly number[]
  /** The single cookie's token, when chunks came too: the later of the two is the session. */
  other: string | undefined
  /** A moved session's id cookie whose session is gone: its id when signed, '' when not. A sealed cookie is trusted only when it came back from that id. */
  goneId: string | undefined
}

const SINGLE: Readonly<Brought> = Object.freeze({ single: true, chunks: [], other: undefined, goneId: undefined })

/** One unsealed token: its stored session, and whether it is best sealed again (`Unsealed.stale`). */
interface Opened { payload: StoredSession, stale: boolean }

/** A sealed token's JSON text: quick bound on its cookie's length, which base64 makes at least 4/3 as long. */
function cannotFit (json: string, limit: number): boolean {
  return Math.ceil(json.length * 4 / 3) > limit
}

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
  readonly #archiveMode: () => ArchiveMode
  readonly #revocable: boolean
  readonly #overflow: CookieOverflow
  /** With overflow to the archive: the id cookie of a session that moved there. */
  readonly #movedName: string
  /** Writes and removals of one record run one at a time in this process. */
  readonly #locks = new KeyedQueue()
  /** Records known to exist, and until when that is trusted (ms). */
  readonly #checked = new Map<string, number>()

  constructor (options: ResolvedOptions, codec: Codec, users: UserSessions, archive: () => Archive, archiveMode: () => ArchiveMode) {
    this.options = options
    this.codec = codec
    this.#sealer = new IronSealer(options.secrets)
    this.#cookie = new CookieWriter(options.cookieName, options.cookie)
    this.#users = users
    this.#archive = archive
    this.#archiveMode = archiveMode
    this.#revocable = options.revocable
    this.#overflow = options.cookieSize.overflow
    this.#movedName = `${options.cookieName}.id`
  }

  /** The cookie that clears the sealed cookie. */
  clearSealed (request: FastifyRequest): string {
    return this.#cookie.clear(request)
  }

  /** The name of the id cookie of a cookie-mode session that overflowed into the archive. */
  get movedName (): string {
    return this.#movedName
  }

  start (request: FastifyRequest, reply: FastifyReply): Session | Promise<Session> {
    if (this.#overflow === 'error') return this.#started(new Session(this, request, reply, emptyState(readCookie(request, this.#cookie.name))))
    if (this.#overflow === 'chunk') return this.#started(this.#startChunked(request, reply))
    const moved = readCookie(request, this.#movedName)
    const session = new Session(this, request, reply, emptyState(readCookie(request, this.#cookie.name)))
    if (moved === undefined || moved === '') return this.#started(session)
    return this.#archiveMode().startMoved(request, reply, moved, session[kState].source !== undefined).then((found) => {
      if (found instanceof Session) return found
      // The id's session is gone: a sealed cookie is the session only if it came back from that id.
      const state: CookieState = session[kState]
      state[kBrought] = { single: state.source !== undefined, chunks: [], other: undefined, goneId: found.gone ?? '' }
      request.log.debug({ code: 'FST_SESSION_ID_REJECTED', reason: found.gone === undefined ? 'the id cookie is not one this server signed' : 'no session is stored under this id' },
        'fastify-sessions: the id of the session moved to the archive was not accepted')
      // Decided now, not on first use: a route that never reads the session still clears what is stale.
      if (state.source === undefined) state.rejected = true
      else if (!this.#revocable) this.decode(session)
      return this.#started(session)
    })
  }

  #started (session: Session): Session | Promise<Session> {
    if (!this.#revocable || session[kState].source === undefined) return session
    return this.#checkRecord(session).then(() => session)
  }

  /** A session whose token may be split over the cookies `<name>.0`, `<name>.1`, ...: read back whole, or not at all. */
  #startChunked (request: FastifyRequest, reply: FastifyReply): Session {
    const single = readCookie(request, this.#cookie.name)
    const chunks = readNumberedCookies(request, `${this.#cookie.name}.`)
    if (chunks.length === 0) return new Session(this, request, reply, emptyState(single))
    const indexes = chunks.map(([index]) => index).sort((a, b) => a - b)
    const count = (indexes.at(-1) as number) + 1
    const parts: string[] = []
    for (const [index, value] of chunks) parts[index] = value
    // A missing chunk, or more than a session is ever split over, makes no token: a fresh session.
    const whole = count === chunks.length && count <= MAX_CHUNKS && !parts.includes('')
    const state: CookieState = emptyState(whole ? parts.join('') : '')
    state[kBrought] = { single: single !== undefined, chunks: indexes.slice(0, MAX_CLEARED), other: single === '' ? undefined : single, goneId: undefined }
    return new Session(this, request, reply, state)
  }

  newHandle (userId: string): string {
    // Where app.sessions lists sessions (an archive-mode app), a stateless
    // session bound to a user would be missing from the list, and could not be revoked.
    if (!this.#revocable && this.options.mode === 'archive') throw new FST_SESSION_NOT_REVOCABLE()
    return this.#users.newHandle(userId)
  }

  decode (session: Session): void {
    const state: CookieState = session[kState]
    // A state never read has nothing to reset: it gets the token's data, or empty data of its own when there is none.
    if (!isUnread(state)) resetState(state)
    state.loaded = true
    this.#readToken(session, state)
    if (isUnread(state)) resetState(state)
  }

  #readToken (session: Session, state: CookieState): void {
    const token = state.source
    const brought = state[kBrought]
    if (token === undefined || (token === '' && brought?.chunks.length === 0)) return
    if (token === '' && brought === undefined) return
    const now = Date.now()
    let touchedNow = false
    let opened = token === '' ? 'the chunked cookies are incomplete' : this.#open(token, now)
    if (brought?.other !== undefined) {
      // The single cookie and chunks both came, from two responses that crossed: the later one is the session.
      const other = this.#open(brought.other, now)
      if (typeof other !== 'string' && (typeof opened === 'string' || other.payload.t > opened.payload.t)) {
        opened = other
        state.source = brought.other
      }
      brought.other = undefined
      // Sealed again in this response, which clears the other.
      if (typeof opened !== 'string') touchedNow = true
    }
    if (typeof opened === 'string') return this.#reject(session, opened)
    if (brought?.goneId !== undefined && opened.payload.p !== brought.goneId) {
      return this.#reject(session, 'the sealed cookie is older than the archived session it moved to, which is gone')
    }
    // Sealed with an older secret, or with other salts: resealed with the current secret and its salts in this response.
    if (restoreSession(state, opened.payload, this.codec, session[kRequest].log) && (opened.stale || touchedNow)) state.touched = true
  }

  #reject (session: Session, reason: string): void {
    resetState(session[kState])
    session[kState].rejected = true
    session[kRequest].log.debug({ code: 'FST_SESSION_COOKIE_REJECTED', reason },
      'fastify-sessions: the session cookie was not accepted; starting a fresh session')
  }

  /** Unseals a token into the session it holds; for anything else, why not. */
  #open (token: string, now: number): Opened | string {
    const unsealed = this.#sealer.unseal(token, now)
    if (unsealed === undefined) return 'not a valid, unexpired seal'
    const payload = parseStoredSession(unsealed.json)
    if (typeof payload === 'string') return payload
    const expired = timedOut(payload, now, this.options)
    if (expired !== undefined) return expired
    if (this.#revocable && payload.r === undefined) return 'the seal names no revocation record'
    return { payload, stale: unsealed.stale }
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
    const came = state.source !== undefined || (state as CookieState)[kBrought] !== undefined
    const records = [state.record, state.replacedRecord].filter((record) => record !== undefined)
    const handles = [state.handle, state.retiredHandle].filter((handle) => handle !== undefined)
    if (this.#revocable) {
      await Promise.all(records.map((record) => this.revokeRecord(record)))
      await Promise.all(handles.map((handle) => this.#users.remove(handle)))
    }
    resetState(state)
    state.replacedRecord = undefined
    state.retiredHandle = undefined
    state.rejected = false
    // A request that brought no session has no cookie to clear.
    if (came) emitCookie(session, this.clearAll(session), true)
    else state.setCookie = undefined
    state.source = undefined
    delete (state as CookieState)[kBrought]
  }

  /**
   * The cookies that clear everything of the session the request brought: its
   * own cookie, its chunks, and the id cookie of where it moved.
   */
  clearAll (session: Session): string[] {
    const request = session[kRequest]
    const state: CookieState = session[kState]
    const brought = state[kBrought]
    if (brought === undefined) return state.source === undefined ? [] : [this.#cookie.clear(request)]
    const cookies = this.#clears(request, brought, 'none')
    return brought.single ? [this.#cookie.clear(request), ...cookies] : cookies
  }

  /** Clears of the overflow cookies a request brought that a response sending `using` no longer needs. */
  #clears (request: FastifyRequest, brought: Brought, using: 'single' | 'none' | number): string[] {
    const cookies: string[] = []
    if (brought.single && typeof using === 'number') cookies.push(this.#cookie.clear(request))
    const kept = typeof using === 'number' ? using : 0
    for (const index of brought.chunks) if (index >= kept) cookies.push(this.#cookie.clear(request, `${this.#cookie.name}.${index}`))
    if (brought.goneId !== undefined) cookies.push(this.#cookie.clear(request, this.#movedName))
    return cookies
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
    if (!state.loaded && (!rolling || state.source === undefined)) {
      if (state.rejected) this.#clearRejected(session)
      sendCookie(session, session[kReply])
      return
    }
    if (!state.loaded) this.decode(session)
    collectInPlaceChanges(state, this.codec)
    if (state.changed || state.touched || state.replacedRecord !== undefined || (rolling && !state.isNew)) {
      const seal = this.#seal(session, false)
      if (seal !== undefined) return seal.then(() => sendCookie(session, session[kReply]))
    } else if (state.rejected) {
      this.#clearRejected(session)
    } else {
      const brought = (state as CookieState)[kBrought]
      // The sealed cookie stands, and the id cookie of a session that left the archive goes.
      if (brought?.goneId !== undefined) state.setCookie ??= this.#clears(session[kRequest], brought, 'single')
    }
    sendCookie(session, session[kReply])
  }

  /** A cookie we refused would come back with every request: clear it once. */
  #clearRejected (session: Session): void {
    const state = session[kState]
    if (state.setCookie === undefined) state.setCookie = this.clearAll(session)
  }

  /**
   * Seals the session into its cookie, or its chunks, or moves it to the
   * archive when it has outgrown the cookie; with `revocable`, writes its
   * record first, and sends nothing when the record was revoked meanwhile.
   */
  #seal (session: Session, explicit: boolean): Promise<void> | undefined {
    const state = session[kState]
    const request = session[kRequest]
    collectInPlaceChanges(state, this.codec)
    const now = Date.now()
    if (state.created === 0) state.created = now
    if (this.#revocable) state.record ??= createSessionId()
    const expiresAt = expiryOf(state.created, now, state.maxAge, this.options)
    const json = JSON.stringify(storedForm(state, now))
    const { warn, max } = this.options.cookieSize
    // Plainly too large for its cookie: moved without sealing it first.
    if (this.#overflow === 'archive' && cannotFit(json, max)) return this.#overflowToArchive(session, explicit, json)
    const token = this.#sealer.seal(json, expiresAt)
    const maxAge = Math.ceil((expiresAt - now) / 1000)
    const cookie = this.#cookie.set(request, token, maxAge)
    // The cookie is ASCII throughout (the token is base64url, the attributes are validated), so length is bytes.
    let cookies: string[]
    if (cookie.length <= max) {
      if (cookie.length >= warn) {
        request.log.warn({ code: 'FST_SESSION_COOKIE_NEAR_LIMIT', cookie: this.#cookie.name, bytes: cookie.length, limit: max },
          'fastify-sessions: the session cookie is near the size limit; store less in the session or use archive mode')
      }
      cookies = [cookie]
    } else if (this.#overflow === 'error') {
      throw new FST_SESSION_COOKIE_TOO_LARGE(this.#cookie.name, cookie.length, max)
    } else if (this.#overflow === 'archive') {
      return this.#overflowToArchive(session, explicit, json, cookie.length)
    } else {
      this.#logOverflow(session, cookie.length)
      cookies = this.#chunks(request, token, maxAge)
    }
    return this.#send(session, explicit, cookies, cookies.length === 1 ? 'single' : cookies.length, token, now, expiresAt)
  }

  /** Moves the session to the archive, with its stored form `json`; `bytes`, the size of the cookie it would have had, when it was sealed to find out. */
  #overflowToArchive (session: Session, explicit: boolean, json: string, bytes?: number): Promise<void> {
    this.#logOverflow(session, bytes ?? this.#cookie.name.length + 1 + Math.ceil(json.length * 4 / 3))
    return this.#moveToArchive(session, explicit, Buffer.byteLength(json))
  }

  #logOverflow (session: Session, bytes: number): void {
    session[kRequest].log.warn({ code: 'FST_SESSION_COOKIE_OVERFLOW', cookie: this.#cookie.name, bytes, limit: this.options.cookieSize.max, overflow: this.#overflow },
      this.#overflow === 'archive'
        ? 'fastify-sessions: the session outgrew its cookie and moves to the archive'
        : 'fastify-sessions: the session outgrew its cookie and is split over several cookies')
  }

  /**
   * The token split over `<name>.0`, `<name>.1`, ...: each `Set-Cookie` at most
   * `cookieSize.max` bytes, and together at most `cookieSize.maxTotal` bytes
   * of the `Cookie` header that brings them back ("<name>.0=...; <name>.1=...").
   */
  #chunks (request: FastifyRequest, token: string, maxAge: number): string[] {
    const { max, maxTotal } = this.options.cookieSize
    const cookies: string[] = []
    let offset = 0
    let total = 0
    while (offset < token.length) {
      const name = `${this.#cookie.name}.${cookies.length}`
      const room = max - this.#cookie.set(request, '', maxAge, name).length
      if (room <= 0 || cookies.length === MAX_CHUNKS) break
      const part = token.slice(offset, offset + room)
      cookies.push(this.#cookie.set(request, part, maxAge, name))
      total += (cookies.length > 1 ? 2 : 0) + name.length + 1 + part.length
      offset += part.length
    }
    if (offset < token.length || total > maxTotal) {
      throw new FST_SESSION_COOKIE_TOO_LARGE(`${this.#cookie.name}.0, ${this.#cookie.name}.1, ...`, Math.max(total, token.length), maxTotal)
    }
    return cookies
  }

  /** Sends the sealed cookies, clearing what of the request's overflow cookies they replace; with `revocable`, once the record is written. */
  #send (session: Session, explicit: boolean, cookies: string[], using: 'single' | number, token: string, now: number, expiresAt: number): Promise<void> | undefined {
    const state: CookieState = session[kState]
    const sent = (): void => {
      // A request that brought only the session's own cookie has no overflow cookies recorded.
      const brought = state[kBrought] ?? (this.#overflow !== 'error' && state.source !== undefined ? SINGLE : undefined)
      if (brought !== undefined) cookies.push(...this.#clears(session[kRequest], brought, using))
      if (this.#overflow !== 'error') {
        state[kBrought] = { single: using === 'single', chunks: using === 'single' ? [] : Array.from({ length: using }, (_, index) => index), other: undefined, goneId: undefined }
      }
      state.changed = false
      state.touched = false
      state.saved = now
      state.source = token
      state.rejected = false
      state[kRegenerated] = false
      emitCookie(session, cookies, explicit)
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
   * Moves a session that outgrew its cookie to the archive, under a new id in
   * the cookie `<name>.id`; the sealed cookie is cleared in the same response.
   * A revocable session moves only while its record lives, and its record goes.
   */
  async #moveToArchive (session: Session, explicit: boolean, bytes: number): Promise<void> {
    const state = session[kState]
    const archiveMode = this.#archiveMode()
    const guard = this.#revocable ? (state.replacedRecord ?? (state.isNew ? undefined : state.record)) : undefined
    state.record = undefined
    state.replacedRecord = undefined
    const clears = this.clearAll(session)
    if (guard === undefined) {
      await archiveMode.adopt(session, explicit, clears, bytes)
      return
    }
    let moved: boolean
    try {
      moved = await this.#locks.run(guard, async () => {
        if (await this.#archive().get(guard, RECORD_KEY) === undefined) return false
        if (!await archiveMode.adopt(session, explicit, clears, bytes)) return true
        this.#checked.delete(guard)
        await this.#archive().removeDomain(guard)
        return true
      })
    } catch (error) {
      throw archiveFailure(error)
    }
    if (!moved) lostToRevocation(session)
  }

  /**
   * Whether a session that moved to the archive may come back to its sealed
   * cookie: not a revocable one, nor one bound to a user, which keep state in
   * the archive whichever way they live, nor one plainly too large.
   */
  mayReturn (state: SessionState): boolean {
    // `bytes`, the stored text's size, rules out at no cost a session still far too large to come back.
    return !this.#revocable && state.userId === undefined && Math.ceil(state.bytes * 4 / 3) <= this.options.cookieSize.warn
  }

  /**
   * A session in the archive that fits in its sealed cookie again comes back
   * to it, naming the archive id it leaves: sealed here, and sent by the
   * function returned, which the caller calls once the archived copy is
   * removed; undefined while it would still take more than `cookieSize.warn` bytes.
   */
  adoptFromArchive (session: Session, explicit: boolean, from: string | undefined, data: Record<string, Json>, clears: string[]): (() => void) | undefined {
    const state = session[kState]
    const request = session[kRequest]
    const now = Date.now()
    const stored = storedForm(state, now, data)
    if (from !== undefined) stored.p = from
    const json = JSON.stringify(stored)
    const { warn } = this.options.cookieSize
    if (cannotFit(json, warn)) return undefined
    const expiresAt = expiryOf(state.created, now, state.maxAge, this.options)
    const token = this.#sealer.seal(json, expiresAt)
    const cookie = this.#cookie.set(request, token, Math.ceil((expiresAt - now) / 1000))
    if (cookie.length > warn) return undefined
    return () => {
      restoreSession(state, stored, this.codec, request.log)
      state.loaded = true
      state.id = undefined
      state.replaced = undefined
      state.dirty = undefined
      session[kEngine] = this
      ;(state as CookieState)[kBrought] = { single: false, chunks: [], other: undefined, goneId: undefined }
      this.#send(session, explicit, [cookie, ...clears], 'single', token, now, expiresAt)
    }
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
