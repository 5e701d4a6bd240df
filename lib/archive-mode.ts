import type { FastifyReply, FastifyRequest } from 'fastify'
import { archiveFailure, isAtCapacity, warnAtCapacity } from './archive-failure.js'
import type { Archive } from './archives/archive.js'
import type { CookieMode } from './cookie-mode.js'
import type { Codec, Json } from './codec.js'
import { CookieWriter, emitCookie, readCookie, sendCookie } from './cookie-header.js'
import { FST_SESSION_ARCHIVE_UNAVAILABLE, FST_SESSION_HEADERS_SENT, FST_SESSION_TOO_LARGE } from './errors.js'
import { KeyedQueue } from './keyed-queue.js'
import type { ResolvedOptions } from './options.js'
import { createSessionId, IdSigner } from './session-id.js'
import {
  collectInPlaceChanges, cookieCannotBeSent, emptyState, expiryOf, keepOnly, kEngine, kReply, kRequest, kState, parseStoredSession, resetState,
  restoreSession, Session, storedForm, timedOut, lostToRevocation, type SessionEngine, type SessionState
} from './session.js'
import { syncUserIndex, type UserSessions } from './user-sessions.js'

/** The archive key a session is stored under: `<dir>/<id>/session.json` for the file archive. */
export const SESSION_KEY = 'session'

/** How often a save is retried when other processes keep changing the session under it. */
const SAVE_ATTEMPTS = 8

/** The stored data with this request's set and deleted keys applied. */
function mergeChanges (stored: Record<string, Json>, state: SessionState): Record<string, Json> {
  // A prototype-less copy: a "__proto__" key stays an ordinary key.
  const data: Record<string, Json> = Object.assign(Object.create(null), stored)
  for (const key of state.dirty as Set<string>) {
    if (key in state.json) data[key] = state.json[key] as Json
    else delete data[key]
  }
  return data
}

/** Archive mode's part of a session's state: the stored text read in `onRequest`, parsed on first use. */
const kPending = Symbol('fastify-sessions.pending')
/**
 * A cookie-mode route's session that outgrew its cookie and lives in the
 * archive: the cookies its next response clears besides (the sealed cookie a
 * request still brought), and its id cookie is `<cookieName>.id`.
 */
const kMoved = Symbol('fastify-sessions.moved')
/** The text stored under the session's id when this request last read or wrote it: what a save expects to find there. */
const kStoredText = Symbol('fastify-sessions.stored-text')
type PendingState = SessionState & { [kPending]?: string | undefined, [kStoredText]?: string | undefined, [kMoved]?: Moved }

interface Moved {
  /** Cookies the next response clears besides its own. */
  clears: string[]
  /** Whether it is being moved in, too large for its cookie by definition. */
  adopting: boolean
}

/** Sends a session sealed to come back to its cookie, if it fits. */
function sealNow (sealed: (() => void) | undefined): 'back' | 'stays' {
  if (sealed === undefined) return 'stays'
  sealed()
  return 'back'
}

/** What an id cookie names: the id when this server signed it, and what is stored under it. */
interface Found { id: string, text: string | undefined, secretIndex: number }

/**
 * Archive mode: the cookie carries a signed random id, the state lives in an
 * `Archive` under that id. The stored text is fetched in `onRequest` and
 * parsed on the session's first use; it is stored in `onSend` only when
 * something changed, so anonymous traffic stores nothing.
 *
 * A save merges the keys this request changed into the state stored now, so
 * two requests changing different keys both keep their change, and a session
 * destroyed or regenerated meanwhile stays gone: that save sends no cookie.
 * Within this process, saves and destroys of one session run one at a time;
 * across processes, the archive's `compareAndSet` (when it has one) makes the
 * merge atomic.
 */
export class ArchiveMode implements SessionEngine {
  readonly mode = 'archive' as const
  readonly options: ResolvedOptions
  readonly maxSize: number
  readonly codec: Codec
  readonly #archive: Archive
  readonly #ids: IdSigner
  readonly #cookie: CookieWriter
  /** The id cookie of cookie-mode sessions that moved here when they outgrew their cookie. */
  readonly #movedCookie: CookieWriter
  readonly #users: UserSessions
  readonly #cookieMode: CookieMode
  readonly #locks = new KeyedQueue()

  constructor (options: ResolvedOptions, codec: Codec, archive: Archive, users: UserSessions, cookieMode: CookieMode) {
    this.options = options
    this.maxSize = options.maxSize
    this.codec = codec
    this.#archive = archive
    this.#ids = new IdSigner(options.secrets)
    this.#cookie = new CookieWriter(options.idCookieName, options.cookie)
    this.#movedCookie = new CookieWriter(cookieMode.movedName, options.cookie)
    this.#users = users
    this.#cookieMode = cookieMode
  }

  async start (request: FastifyRequest, reply: FastifyReply): Promise<Session> {
    const session = this.#newSession(request, reply)
    const value = readCookie(request, this.#cookie.name)
    if (value !== undefined && value !== '') {
      const found = await this.#find(value)
      if (found?.text !== undefined) return this.#opened(session, found)
      this.#reject(session, found === undefined ? 'the id cookie is not one this server signed' : 'no session is stored under this id')
    }
    const state = session[kState]
    resetState(state)
    state.loaded = true
    state.id = createSessionId()
    return session
  }

  /**
   * A cookie-mode route's session that moved here: the session, or, when it
   * is not stored (any more), the id the cookie named if this server signed it.
   */
  async startMoved (request: FastifyRequest, reply: FastifyReply, value: string, sealedCame: boolean): Promise<Session | { gone: string | undefined }> {
    const found = await this.#find(value)
    if (found?.text === undefined) return { gone: found?.id }
    const session = this.#newSession(request, reply)
    // A sealed cookie beside the id is older than the move: the id wins, and the sealed cookie goes.
    ;(session[kState] as PendingState)[kMoved] = { clears: sealedCame ? [this.#cookieMode.clearSealed(request)] : [], adopting: false }
    return this.#opened(session, found)
  }

  #newSession (request: FastifyRequest, reply: FastifyReply): Session {
    const state: PendingState = emptyState(undefined)
    state.dirty = new Set()
    return new Session(this, request, reply, state)
  }

  async #find (value: string): Promise<Found | undefined> {
    const verified = this.#ids.verify(value)
    if (verified === undefined) return undefined
    return { id: verified.id, text: await this.#fetch(verified.id), secretIndex: verified.secretIndex }
  }

  #opened (session: Session, found: Found): Session {
    const state: PendingState = session[kState]
    state[kPending] = found.text
    state.id = found.id
    state.source = found.id
    // Signed with an older secret: sign it again with the current one.
    if (found.secretIndex !== 0) state.touched = true
    return session
  }

  /**
   * Takes in a cookie-mode session that outgrew its cookie: stored under a new
   * id, established at once (a flood of new sessions cannot evict it), with
   * `clears` (its sealed cookies) in the same response. False when the archive
   * had no room: nothing is sent, and the browser keeps its sealed cookie.
   */
  async adopt (session: Session, explicit: boolean, clears: string[], bytes: number): Promise<boolean> {
    const state: PendingState = session[kState]
    state.id = createSessionId()
    state.source = undefined
    state.dirty = new Set()
    const moved: Moved = { clears, adopting: true }
    state[kMoved] = moved
    state.bytes = bytes
    if (state.bytes > this.maxSize) throw new FST_SESSION_TOO_LARGE('(the whole session, moving to the archive)', state.bytes, this.maxSize)
    if (state.handle !== undefined) state.userChanged = true
    session[kEngine] = this
    try {
      await this.#store(session, explicit)
    } finally {
      moved.adopting = false
      // Not stored: the browser keeps its sealed cookie, and this response clears nothing.
      if (state.source !== state.id) moved.clears = []
    }
    if (state.source !== state.id) return false
    await this.#fetch(state.id as string)
    return true
  }

  /** The id cookie of a session: the moved sessions' own, or archive mode's. */
  #cookieOf (state: PendingState): CookieWriter {
    return state[kMoved] === undefined ? this.#cookie : this.#movedCookie
  }

  /** The cookies a moved session's response clears besides its own, once. */
  #takeClears (state: PendingState): string[] {
    const moved = state[kMoved]
    if (moved === undefined || moved.clears.length === 0) return []
    const clears = moved.clears
    moved.clears = []
    return clears
  }

  async #fetch (id: string): Promise<string | undefined> {
    try {
      return await this.#archive.get(id, SESSION_KEY)
    } catch (error) {
      throw archiveFailure(error)
    }
  }

  newHandle (userId: string): string {
    return this.#users.newHandle(userId)
  }

  /** Parses the stored text fetched in `onRequest`. */
  decode (session: Session): void {
    const state: PendingState = session[kState]
    const text = state[kPending] as string
    state[kPending] = undefined
    const touched = state.touched
    resetState(state)
    state.loaded = true
    const reason = this.#restore(session, text)
    if (reason === undefined) {
      state.touched = touched
      state[kStoredText] = text
      return
    }
    this.#reject(session, reason)
    state.source = undefined
    state.id = createSessionId()
  }

  #restore (session: Session, text: string): string | undefined {
    const stored = parseStoredSession(text)
    if (typeof stored === 'string') return stored
    const expired = timedOut(stored, Date.now(), this.options)
    if (expired !== undefined) return expired
    const state = session[kState]
    if (!restoreSession(state, stored, this.codec, session[kRequest].log)) return 'a value of a type not registered'
    state.bytes = Buffer.byteLength(text)
    return undefined
  }

  #reject (session: Session, reason: string): void {
    session[kState].rejected = true
    session[kRequest].log.debug({ code: 'FST_SESSION_ID_REJECTED', reason },
      'fastify-sessions: the session id was not accepted; starting a fresh session')
  }

  async load (session: Session): Promise<void> {
    const state: PendingState = session[kState]
    const id = state.source
    // An id that regenerate() retired stays scheduled for removal.
    const replaced = state.replaced
    resetState(state)
    state.loaded = true
    state.source = undefined
    state.id = createSessionId()
    state.replaced = replaced
    if (id === undefined) return
    const text = await this.#fetch(id)
    if (text === undefined) return this.#reject(session, 'no session is stored under this id')
    state.id = id
    state.source = id
    state[kPending] = text
    state.loaded = false
    this.decode(session)
  }

  async save (session: Session): Promise<void> {
    await this.#store(session, true)
  }

  async destroy (session: Session): Promise<void> {
    const state = session[kState]
    const came = state.source !== undefined || state.replaced !== undefined || state.rejected
    const ids = [state.source, state.replaced].filter((id) => id !== undefined)
    const handles = [state.handle, state.retiredHandle].filter((handle) => handle !== undefined)
    await Promise.all(ids.map((id) => this.revokeId(id)))
    await Promise.all(handles.map((handle) => this.#users.remove(handle)))
    resetState(state)
    state.source = undefined
    state.replaced = undefined
    state.retiredHandle = undefined
    state.rejected = false
    state.id = createSessionId()
    // A request that brought no session has no cookie to clear.
    if (came) emitCookie(session, [this.#cookieOf(state).clear(session[kRequest]), ...this.#takeClears(state)], true)
    else state.setCookie = undefined
  }

  async regenerate (session: Session, keep: readonly string[] | undefined): Promise<void> {
    const state = session[kState]
    keepOnly(state, keep)
    // The old domain goes when the new one is stored, in the same save.
    state.replaced ??= state.source
    state.source = undefined
    state.id = createSessionId()
  }

  commit (session: Session): Promise<void> | void {
    const state: PendingState = session[kState]
    if (!state.loaded) {
      if (!this.options.rolling && !state.touched) {
        this.#sendClears(session)
        return
      }
      this.decode(session)
    }
    collectInPlaceChanges(state, this.codec)
    if (state.changed || state.touched || state.replaced !== undefined || (this.options.rolling && !state.isNew)) {
      return this.#store(session, false).then(() => sendCookie(session, session[kReply]))
    }
    // A cookie we refused would come back with every request: clear it once.
    if (state.rejected && state.setCookie === undefined) state.setCookie = [this.#cookieOf(state).clear(session[kRequest])]
    this.#sendClears(session)
  }

  /** Sends the session's cookie as decided, with the clears a moved session still owes. */
  #sendClears (session: Session): void {
    const state: PendingState = session[kState]
    const clears = this.#takeClears(state)
    if (clears.length > 0) state.setCookie = [...state.setCookie ?? [], ...clears]
    sendCookie(session, session[kReply])
  }

  async #store (session: Session, explicit: boolean): Promise<void> {
    const state = session[kState]
    collectInPlaceChanges(state, this.codec)
    const id = state.id as string
    const now = Date.now()
    if (state.created === 0) state.created = now
    const ttl = expiryOf(state.created, now, state.maxAge, this.options) - now
    const creating = state.source !== id
    // Without a response to carry it, only a session whose cookie the browser already holds can be stored.
    const detached = explicit && cookieCannotBeSent(session)
    if (detached && (creating || state.replaced !== undefined)) throw new FST_SESSION_HEADERS_SENT()
    const replaced = state.replaced
    const moved = (state as PendingState)[kMoved]
    if (moved !== undefined && !moved.adopting && this.#cookieMode.mayReturn(state) && await this.#returnToCookie(session, explicit)) return
    let stored: boolean
    try {
      // A regenerated session replaces the one this request read only while
      // that one lives: a logout or revocation meanwhile wins, in this
      // process under the old id's lock, which a revocation takes too.
      stored = replaced === undefined
        ? await this.#locks.run(id, () => this.#write(state, id, now, ttl))
        : await this.#locks.run(replaced, async () => {
          if (await this.#archive.get(replaced, SESSION_KEY) === undefined) return false
          // Under a new id, with nothing read to merge: the write stores or throws.
          await this.#locks.run(id, () => this.#write(state, id, now, ttl))
          await this.#archive.removeDomain(replaced)
          return true
        })
      if (stored) {
        state.replaced = undefined
        // Only a binding that changed touches the user's index.
        if (state.userChanged || state.retiredHandle !== undefined) await syncUserIndex(this.#users, state, { m: 'a', i: id }, this.options.absoluteTimeout, now)
      }
    } catch (error) {
      state.changed = false
      state.touched = false
      state.setCookie = undefined
      if (creating && isAtCapacity(error)) {
        // Served without storing: sessions already stored are never refused.
        warnAtCapacity(session)
        return
      }
      // No cookie for state that was not stored; the error answers the request.
      throw archiveFailure(error)
    }
    state.changed = false
    state.touched = false
    state.dirty?.clear()
    if (!stored) {
      lostToRevocation(session)
      return
    }
    state.retiredHandle = undefined
    state.userChanged = false
    state.source = id
    state.saved = now
    state.rejected = false
    if (detached) return
    const cookie = this.#cookieOf(state).set(session[kRequest], this.#ids.sign(id), Math.ceil(ttl / 1000))
    emitCookie(session, [cookie, ...this.#takeClears(state)], explicit)
  }

  /**
   * A moved session that fits in its sealed cookie again goes back to it: the
   * archived one is removed, in turn with this process's saves of it, and only
   * while it lives (a logout meanwhile wins). True when the session is now
   * sealed, or was lost to a logout; false when it stays here.
   */
  async #returnToCookie (session: Session, explicit: boolean): Promise<boolean> {
    const state: PendingState = session[kState]
    const from = state.replaced ?? state.source
    const clears = [this.#movedCookie.clear(session[kRequest]), ...this.#takeClears(state)]
    const back = (data: Record<string, Json>): (() => void) | undefined => this.#cookieMode.adoptFromArchive(session, explicit, from, data, clears)
    let outcome: 'back' | 'stays' | 'lost'
    try {
      outcome = from === undefined
        ? sealNow(back(state.json))
        : await this.#locks.run(from, async () => {
          const current = await this.#archive.get(from, SESSION_KEY)
          const stored = current === undefined ? 'nothing stored' : parseStoredSession(current)
          if (typeof stored === 'string') return 'lost'
          // Regenerated: a new session with nothing to merge; else this request's changes merged into what is stored now.
          const sealed = back(state.replaced === undefined ? mergeChanges(stored.d, state) : state.json)
          if (sealed === undefined) return 'stays'
          await this.#archive.removeDomain(from)
          return sealNow(sealed)
        })
    } catch (error) {
      throw archiveFailure(error)
    }
    if (outcome === 'stays') {
      // The clears go with the id cookie that the archive's save sends.
      state[kMoved] = { clears: clears.slice(1), adopting: false }
      return false
    }
    if (outcome === 'lost') lostToRevocation(session)
    return true
  }

  /** Writes the session under `id`; false when the session it was read from is gone. */
  async #write (state: PendingState, id: string, now: number, ttl: number): Promise<boolean> {
    const archive = this.#archive
    const existed = state.source === id
    // First, where the archive can compare: the text this request read, which
    // its data already holds with its changes, so an unchanged session is
    // written in one call, with nothing to read or merge.
    let current = existed ? state[kStoredText] : undefined
    let data = state.json
    for (let attempt = 0; attempt < SAVE_ATTEMPTS; attempt++) {
      if (existed && (attempt > 0 || archive.compareAndSet === undefined)) {
        // Changed since this request read it, or not comparable: merge this
        // request's changes into what is stored now.
        current = await archive.get(id, SESSION_KEY)
        const stored = current === undefined ? 'nothing stored' : parseStoredSession(current)
        if (typeof stored === 'string') return false
        data = mergeChanges(stored.d, state)
      }
      const text = JSON.stringify(storedForm(state, now, data))
      if (archive.compareAndSet === undefined) {
        await archive.set(id, SESSION_KEY, text, ttl)
      } else if (!await archive.compareAndSet(id, SESSION_KEY, current, text, ttl)) {
        // Another request or process saved it since: read and merge again.
        continue
      }
      state[kStoredText] = text
      return true
    }
    throw new FST_SESSION_ARCHIVE_UNAVAILABLE(`one session was saved concurrently more than ${SAVE_ATTEMPTS} times in a row`)
  }

  /** Removes a session's domain, in turn with this process's saves of it. */
  async revokeId (id: string): Promise<void> {
    try {
      await this.#locks.run(id, () => this.#archive.removeDomain(id))
    } catch (error) {
      throw archiveFailure(error)
    }
  }

  /** When a session was last stored, or undefined when it is gone. */
  async lastSaved (id: string): Promise<number | undefined> {
    const text = await this.#fetch(id)
    if (text === undefined) return undefined
    const stored = parseStoredSession(text)
    return typeof stored === 'string' || timedOut(stored, Date.now(), this.options) !== undefined ? undefined : stored.t
  }
}
