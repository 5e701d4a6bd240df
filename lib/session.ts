import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify'
import { copyJson, encodesTo, type Codec, type Json, type UnknownTypeError } from './codec.js'
import { FST_SESSION_INVALID_ARGUMENT, FST_SESSION_PROPERTY_WRITE, FST_SESSION_TOO_LARGE } from './errors.js'
import type { ResolvedOptions, SessionMode } from './options.js'

/**
 * The shape of every session, extended by declaration merging:
 *
 * @example
 * declare module 'fastify-sessions' {
 *   interface SessionData { user: { id: string, name: string }, visits: number }
 * }
 */
export interface SessionData {}

/** The keys a session accepts: those of `SessionData`, or any string while it declares none. */
export type SessionKey = keyof SessionData extends never ? string : Extract<keyof SessionData, string>

/** The value stored under a key: its `SessionData` type, or `unknown` while it declares none. */
export type SessionValue<K extends string> = K extends keyof SessionData ? SessionData[K] : unknown

export const kState = Symbol('fastify-sessions.state')
export const kEngine = Symbol('fastify-sessions.engine')
export const kRequest = Symbol('fastify-sessions.request')
export const kReply = Symbol('fastify-sessions.reply')

/** A session's state, shared between the `Session` and the mode that stores it. */
export interface SessionState {
  /** Live values, as `set()` received them or as decoded. */
  data: Record<string, unknown>
  /** The JSON form of each value, what the mode stores. */
  json: Record<string, Json>
  /** When the session was first stored (ms), 0 until then. */
  created: number
  /** When the session was last stored (ms), 0 until then. */
  saved: number
  /** This session's idle timeout in seconds, set by `options({ maxAge })`; the plugin's `maxAge` when undefined. */
  maxAge: number | undefined
  /** The user the session is bound to with `bindUser()`. */
  userId: string | undefined
  /** The session's handle in its user's index, while it is bound. */
  handle: string | undefined
  /** Whether the binding changed since the session was read, so the user index needs writing. */
  userChanged: boolean
  /** The handle that `regenerate()` or a new binding retires from its user's index when the session is next stored. */
  retiredHandle: string | undefined
  /** Cookie mode with `revocable`: the id of the session's record in the archive. */
  record: string | undefined
  /** Cookie mode with `revocable`: the record that `regenerate()` retires when the session is next sealed. */
  replacedRecord: string | undefined
  /** Cookie mode with overflow to the archive: the archive id this sealed session came back from, so a stale id cookie cannot win over it. */
  movedFrom: string | undefined
  /** Whether the request brought no valid session. */
  isNew: boolean
  /** Whether the stored state has been read (cookie mode decodes on first use). */
  loaded: boolean
  /** Whether data changed since the session was read or saved. */
  changed: boolean
  /** Whether `touch()` asked for the cookie to be re-issued. */
  touched: boolean
  /** Whether the request's cookie was refused, so that the response clears it (once). */
  rejected: boolean
  /** The cookie value the state was read from: a sealed token, or a signed id. */
  source: string | undefined
  /** The `Set-Cookie` values this response carries for the session, once decided. */
  setCookie: readonly string[] | undefined
  /** The `Set-Cookie` values written straight onto the raw response by an explicit call. */
  rawCookie: readonly string[] | undefined
  /** Archive mode: the session's id (a fresh one until the session is stored). */
  id: string | undefined
  /** Archive mode: the id whose domain `regenerate()` retires when the session is next stored. */
  replaced: string | undefined
  /** Archive mode: the keys set or deleted since the session was read, merged into the stored state on save. */
  dirty: Set<string> | undefined
  /**
   * Keys whose object values `get()` or `set()` handed out, checked for in-place
   * changes when the session is stored against their stored form in `json`, a
   * copy of its own, never the object handed out.
   */
  handed: Set<string> | undefined
  /** Archive mode: the size of the stored JSON text, kept to enforce `maxSize`. */
  bytes: number
}

/** What each mode implements; the `Session` delegates storage to it. */
export interface SessionEngine {
  readonly mode: SessionMode
  readonly codec: Codec
  readonly options: ResolvedOptions
  /** The most bytes a stored session may take, checked at `set()`; undefined where the cookie size limit applies instead. */
  readonly maxSize: number | undefined
  /** Reads the stored state into a session not read yet; only cookie mode leaves a session unread until its first use. */
  decode? (session: Session): void
  load (session: Session): Promise<void>
  save (session: Session): Promise<void>
  destroy (session: Session): Promise<void>
  regenerate (session: Session, keep: readonly string[] | undefined): Promise<void>
  /** Runs in `onSend`: stores what changed and sets the cookie header. */
  commit (session: Session): Promise<void> | void
  /** The handle a bound session gets in its user's index. */
  newHandle (userId: string): string
}

// What an unread session holds: nothing, and nothing can be written into it.
// Reading the session gives it objects of its own; a session never read
// (a route that ignores it) allocates none.
const UNREAD: Record<string, never> = Object.freeze(Object.create(null))

/** The state of a session not read yet. */
export function emptyState (source: string | undefined): SessionState {
  return {
    data: UNREAD,
    json: UNREAD,
    created: 0,
    saved: 0,
    maxAge: undefined,
    userId: undefined,
    handle: undefined,
    userChanged: false,
    retiredHandle: undefined,
    record: undefined,
    replacedRecord: undefined,
    movedFrom: undefined,
    isNew: true,
    loaded: false,
    changed: false,
    touched: false,
    rejected: false,
    source,
    setCookie: undefined,
    rawCookie: undefined,
    id: undefined,
    replaced: undefined,
    dirty: undefined,
    handed: undefined,
    bytes: 0
  }
}

/** Whether a state has never been read: it has no data of its own yet, and nothing to reset. */
export function isUnread (state: SessionState): boolean {
  return state.data === UNREAD
}

/** Gives a state empty data of its own, as for a request that brought no session. */
export function resetState (state: SessionState): void {
  state.data = Object.create(null)
  state.json = Object.create(null)
  state.created = 0
  state.saved = 0
  state.maxAge = undefined
  state.userId = undefined
  state.handle = undefined
  state.userChanged = false
  state.record = undefined
  state.movedFrom = undefined
  state.isNew = true
  state.changed = false
  state.touched = false
  state.dirty?.clear()
  state.handed = undefined
  state.bytes = 0
}

/**
 * What `regenerate()` leaves: only the listed keys (none when `keep` is
 * undefined), no user binding and no per-session options, a new creation
 * time; marked changed, so the fresh session is stored.
 */
export function keepOnly (state: SessionState, keep: readonly string[] | undefined): void {
  for (const key of Object.keys(state.data)) {
    if (keep === undefined || !keep.includes(key)) {
      // Archive mode counts its stored size (`dirty` is archive mode's).
      if (state.dirty !== undefined) state.bytes -= storedBytes(key, state.json[key] as Json)
      delete state.data[key]
      delete state.json[key]
      state.dirty?.add(key)
    }
  }
  state.created = 0
  state.saved = 0
  state.maxAge = undefined
  state.retiredHandle ??= state.handle
  state.userId = undefined
  state.handle = undefined
  state.userChanged = false
  state.changed = true
}

/** What a key and its value add to a stored session's text: its name, quotes, colon and comma, and the value's JSON. */
function storedBytes (key: string, json: Json): number {
  return Buffer.byteLength(key) + 4 + Buffer.byteLength(JSON.stringify(json))
}

/** Fills a state's data from stored JSON forms. */
function restoreData (state: SessionState, json: Record<string, Json>, codec: Codec): void {
  const data: Record<string, unknown> = Object.create(null)
  const copy: Record<string, Json> = Object.create(null)
  for (const key of Object.keys(json)) {
    const value = json[key] as Json
    copy[key] = value
    data[key] = codec.fromJson(value)
  }
  state.data = data
  state.json = copy
}

/**
 * A session as both modes store it, sealed or archived: creation time, last
 * save (both ms), the data, and what only some sessions carry: their own
 * idle timeout (s), the user they are bound to with their handle, (cookie
 * mode with `revocable`) the id of their record, and (a sealed session that
 * overflowed into the archive and came back) the archive id it came from.
 */
export interface StoredSession {
  c: number
  t: number
  d: Record<string, Json>
  m?: number
  u?: string
  h?: string
  r?: string
  p?: string
}

/** Reads a stored session's JSON text; for anything else, why not. */
export function parseStoredSession (text: string): StoredSession | string {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return 'the stored payload is not JSON'
  }
  if (typeof value !== 'object' || value === null) return 'the stored payload is not a session'
  const stored = value as Record<string, unknown>
  const { c, t, d } = stored
  if (!Number.isSafeInteger(c) || !Number.isSafeInteger(t) || typeof d !== 'object' || d === null || Array.isArray(d)) {
    return 'the stored payload is not a session'
  }
  const { m, u, h, r, p } = stored
  if ((m !== undefined && !(Number.isSafeInteger(m) && (m as number) > 0)) ||
    (u !== undefined && (typeof u !== 'string' || typeof h !== 'string')) ||
    (r !== undefined && typeof r !== 'string') || (p !== undefined && typeof p !== 'string')) {
    return 'the stored payload is not a session'
  }
  return value as StoredSession
}

/** The stored form of a state at `now`: what both modes seal or archive. */
export function storedForm (state: SessionState, now: number, data: Record<string, Json> = state.json): StoredSession {
  const stored: StoredSession = { c: state.created, t: now, d: data }
  if (state.maxAge !== undefined) stored.m = state.maxAge
  if (state.userId !== undefined) {
    stored.u = state.userId
    stored.h = state.handle as string
  }
  if (state.record !== undefined) stored.r = state.record
  if (state.movedFrom !== undefined) stored.p = state.movedFrom
  return stored
}

/** The idle timeout of a session in seconds: its own, or the plugin's. */
export function idleSeconds (maxAge: number | undefined, options: ResolvedOptions): number {
  return maxAge ?? options.maxAge
}

/** When a session stored at `saved` and created at `created` ends (ms). */
export function expiryOf (created: number, saved: number, maxAge: number | undefined, options: ResolvedOptions): number {
  return Math.min(saved + idleSeconds(maxAge, options) * 1000, created + options.absoluteTimeout * 1000)
}

/** Which timeout a stored session is past at `now`, if any: both are checked on the server. */
export function timedOut (stored: StoredSession, now: number, options: ResolvedOptions): string | undefined {
  if (now - stored.t >= idleSeconds(stored.m, options) * 1000) return 'idle timeout'
  if (now - stored.c >= options.absoluteTimeout * 1000) return 'absolute timeout'
  return undefined
}

/**
 * Gives a state the stored session's data and creation time; false, with a
 * warning, when a value's type is not registered (any more): the state then
 * stays a fresh session.
 */
export function restoreSession (state: SessionState, stored: StoredSession, codec: Codec, log: FastifyBaseLogger): boolean {
  try {
    restoreData(state, stored.d, codec)
  } catch (error) {
    // The codec throws nothing else.
    log.warn({ code: 'FST_SESSION_UNKNOWN_TYPE', type: (error as UnknownTypeError).type },
      'fastify-sessions: the session holds a value of a type not registered; starting a fresh session')
    return false
  }
  state.created = stored.c
  state.saved = stored.t
  state.maxAge = stored.m
  state.userId = stored.u
  state.handle = stored.h
  state.record = stored.r
  state.movedFrom = stored.p
  state.isNew = false
  return true
}

/**
 * Before a session is stored: values that `get()` handed out and the handler
 * changed in place (`session.get('cart').push(item)`) are taken as set again.
 */
export function collectInPlaceChanges (state: SessionState, codec: Codec): void {
  const handed = state.handed
  if (handed === undefined) return
  state.handed = undefined
  for (const key of handed) {
    if (!(key in state.data)) continue
    const value = state.data[key]
    // Plain data is compared with its stored copy as it is; anything else by the texts of the two.
    if (encodesTo(value, state.json[key] as Json)) continue
    const json = codec.toJson(value, key)
    if (JSON.stringify(json) === JSON.stringify(state.json[key])) continue
    state.json[key] = json
    state.changed = true
    state.dirty?.add(key)
  }
}

/** A save that lost to a logout, revocation or regenerate sends no cookie at all: the browser keeps what the winning response set. */
export function lostToRevocation (session: Session): void {
  session[kRequest].log.debug({ code: 'FST_SESSION_DESTROYED_MEANWHILE' },
    'fastify-sessions: the session was ended by another request; its changes were dropped')
  const state = session[kState]
  resetState(state)
  state.source = undefined
  state.setCookie = undefined
}

/**
 * Whether the response can no longer carry a cookie: its head has left, or it
 * answered an upgrade (a websocket) whose handshake went out without it.
 */
export function cookieCannotBeSent (session: Session): boolean {
  const reply = session[kReply]
  return reply.raw.headersSent || (reply.sent && session[kRequest].headers.upgrade !== undefined)
}

/**
 * Remembers a value handed out, to find in-place changes later. Plain data
 * read back is its own stored form, which a change in place would change too:
 * the stored form becomes a copy of it first.
 */
function handOut (state: SessionState, key: string): void {
  const handed = state.handed ??= new Set()
  if (handed.has(key)) return
  if (state.data[key] === state.json[key]) state.json[key] = copyJson(state.json[key] as Json)
  handed.add(key)
}

/** Per-session cookie options, kept with the session across requests. */
export interface SessionOptions {
  /** This session's idle timeout and cookie lifetime in seconds, at most the plugin's `absoluteTimeout`. */
  maxAge?: number
}

/** What a session's `data()` and `toJSON()` return. */
export type SessionRecord = { [K in SessionKey]?: SessionValue<K> }

const USER_ID_MAX = 256

/** `request.session`: one request's view of its session. */
export class Session {
  /** The mode that stores the session: a cookie-mode session that overflows into the archive changes it. */
  [kEngine]: SessionEngine
  readonly [kRequest]: FastifyRequest
  readonly [kReply]: FastifyReply
  readonly [kState]: SessionState

  constructor (engine: SessionEngine, request: FastifyRequest, reply: FastifyReply, state: SessionState) {
    this[kEngine] = engine
    this[kRequest] = request
    this[kReply] = reply
    this[kState] = state
  }

  /** Where this session lives: `'cookie'` or `'archive'`. */
  get mode (): SessionMode {
    return this[kEngine].mode
  }

  /** The session id in archive mode; `undefined` in cookie mode, where the cookie is the session. */
  get id (): string | undefined {
    return this[kState].id
  }

  /** Whether the request came without a valid session. */
  get isNew (): boolean {
    return this.#read().isNew
  }

  /** Whether data changed since the session was read or last saved. */
  get changed (): boolean {
    return this[kState].changed
  }

  /** When the session was first stored; `undefined` until it is. */
  get createdAt (): Date | undefined {
    const { created } = this.#read()
    return created === 0 ? undefined : new Date(created)
  }

  /** When the session ends unless it is stored again (the sooner of its idle and absolute timeouts); `undefined` until it is stored. */
  get expiresAt (): Date | undefined {
    const state = this.#read()
    return state.saved === 0 ? undefined : new Date(expiryOf(state.created, state.saved, state.maxAge, this[kEngine].options))
  }

  /** The user this session is bound to with `bindUser()`. */
  get userId (): string | undefined {
    return this.#read().userId
  }

  /** This session's handle among its user's sessions (`app.sessions.list()`), safe to show; `undefined` until `bindUser()`. */
  get handle (): string | undefined {
    return this.#read().handle
  }

  /**
   * The value under `key`, or `undefined`. An object handed out here may be
   * changed in place: the change is saved with the session, as if `set()`
   * had been called again.
   */
  get<K extends SessionKey> (key: K): SessionValue<K> | undefined {
    const state = this.#read()
    const value = state.data[key]
    if (typeof value === 'object' && value !== null) handOut(state, key)
    return value as SessionValue<K> | undefined
  }

  /**
   * Stores `value` under `key`. The value is checked and copied here: one that
   * cannot be stored throws `FST_SESSION_UNSERIALIZABLE` naming the key, and
   * one that would make the session larger than `maxSize` throws
   * `FST_SESSION_TOO_LARGE`. Setting `undefined` deletes the key; setting the
   * value a key already holds changes nothing.
   */
  set<K extends SessionKey> (key: K, value: SessionValue<K>): void {
    if (value === undefined) {
      this.delete(key)
      return
    }
    const engine = this[kEngine]
    const json = engine.codec.toJson(value, key)
    const state = this.#read()
    const limit = engine.maxSize
    if (limit === undefined) {
      // Cookie mode: no size to count, and no `dirty` keys (archive mode's). Texts are
      // made only to compare forms that differ in shape (tagged values) or plainly differ.
      const stored = state.json[key]
      if (!(key in state.json) || (!encodesTo(json, stored as Json) && JSON.stringify(json) !== JSON.stringify(stored))) {
        state.json[key] = json
        state.changed = true
      }
    } else {
      // Archive mode: the stored size is counted against maxSize.
      const text = JSON.stringify(json)
      const before = key in state.json ? JSON.stringify(state.json[key]) : undefined
      if (text !== before) {
        // A new key adds its name, quotes, colon and comma to the text.
        const bytes = state.bytes + Buffer.byteLength(text) - (before === undefined ? -Buffer.byteLength(key) - 4 : Buffer.byteLength(before))
        if (bytes > limit) throw new FST_SESSION_TOO_LARGE(key, bytes, limit)
        state.bytes = bytes
        state.json[key] = json
        state.changed = true
        state.dirty?.add(key)
      }
    }
    state.data[key] = value
    // The object stays the handler's, and `json` is a copy of it: compared at store time to find in-place changes.
    if (typeof value === 'object' && value !== null) (state.handed ??= new Set()).add(key)
  }

  /** Removes `key`. */
  delete (key: SessionKey): void {
    const state = this.#read()
    if (!(key in state.data)) return
    if (this[kEngine].maxSize !== undefined) state.bytes -= storedBytes(key, state.json[key] as Json)
    delete state.data[key]
    delete state.json[key]
    state.changed = true
    state.dirty?.add(key)
  }

  /** Whether `key` holds a value. */
  has (key: SessionKey): boolean {
    return key in this.#read().data
  }

  /** The session's keys. */
  keys (): SessionKey[] {
    return Object.keys(this.#read().data) as SessionKey[]
  }

  /** A copy of all the session's values: changing it changes nothing in the session. */
  data (): SessionRecord {
    const state = this.#read()
    const codec = this[kEngine].codec
    const copy: Record<string, unknown> = {}
    for (const key of Object.keys(state.json)) {
      // A value handed out may have changed in place since it was stored: as it is now, as it will be saved.
      const json = state.handed?.has(key) === true ? codec.toJson(state.data[key], key) : state.json[key]
      // Defined, not assigned: a "__proto__" key stays an own key of the copy.
      Object.defineProperty(copy, key, { value: codec.fromJson(JSON.parse(JSON.stringify(json)) as Json), enumerable: true, writable: true, configurable: true })
    }
    return copy as SessionRecord
  }

  /** `JSON.stringify(request.session)`: the session's values, as `data()`. */
  toJSON (): SessionRecord {
    return this.data()
  }

  /** Adds a flash message under `key`, read once by `flashes(key)`. */
  flash (value: unknown, key = '_flash'): void {
    const current = this.#read().data[key]
    this.set(key as SessionKey, (current === undefined ? [value] : Array.isArray(current) ? [...current, value] : [current, value]) as SessionValue<SessionKey>)
  }

  /** Returns the flash messages under `key` and removes them. */
  flashes<T = string> (key = '_flash'): T[] {
    const current = this.#read().data[key]
    if (current === undefined) return []
    this.delete(key as SessionKey)
    return (Array.isArray(current) ? current : [current]) as T[]
  }

  /**
   * This session's own cookie options, kept with it across requests: with
   * `{ maxAge }` (seconds, at most the plugin's `absoluteTimeout`) a "remember
   * me" login outlives the plugin's `maxAge`. Returns the options in force.
   */
  options (options?: SessionOptions): Required<SessionOptions> {
    const state = this.#read()
    const engine = this[kEngine]
    if (options !== undefined) {
      if (typeof options !== 'object' || options === null) throw new FST_SESSION_INVALID_ARGUMENT('session.options()', 'takes an object such as { maxAge: 2592000 }')
      const { maxAge } = options
      if (maxAge !== undefined) {
        const limit = engine.options.absoluteTimeout
        if (!Number.isSafeInteger(maxAge) || maxAge <= 0 || maxAge > limit) {
          throw new FST_SESSION_INVALID_ARGUMENT('session.options({ maxAge })', `must be a whole number of seconds from 1 to absoluteTimeout (${limit})`)
        }
        if (maxAge !== idleSeconds(state.maxAge, engine.options)) {
          state.maxAge = maxAge
          state.touched = true
        }
      }
    }
    return { maxAge: idleSeconds(state.maxAge, engine.options) }
  }

  /**
   * Ties the session to a user, so that `app.sessions.list(userId)` finds it
   * and `app.sessions.revokeUser(userId)` ends it. Call it after
   * `regenerate()` on login: `regenerate()` drops the binding like any data.
   */
  bindUser (userId: string): void {
    if (typeof userId !== 'string' || userId === '' || userId.length > USER_ID_MAX) {
      throw new FST_SESSION_INVALID_ARGUMENT('session.bindUser(userId)', `takes a non-empty string of at most ${USER_ID_MAX} characters`)
    }
    const state = this.#read()
    if (state.userId === userId) return
    state.retiredHandle ??= state.handle
    state.userId = userId
    state.handle = this[kEngine].newHandle(userId)
    state.userChanged = true
    state.touched = true
  }

  /** Asks for the session to be stored and its cookie re-issued, so its idle timeout starts over. */
  touch (): void {
    this.#read().touched = true
  }

  /**
   * Stores the session and sets its cookie now, also on the raw response.
   * Replies that bypass `onSend` (`reply.hijack()`, server-sent events) call it
   * before writing the first byte, and pass `cookieHeaders()` along when they
   * write their own head.
   */
  save (): Promise<void> {
    this.#read()
    return this[kEngine].save(this)
  }

  /**
   * The `Set-Cookie` values the session needs this response to carry, once
   * `save()` (or `destroy()`, `regenerate()` then `save()`) has decided them:
   * for a hijacked reply that writes its own head, e.g.
   * `reply.raw.writeHead(200, { 'set-cookie': request.session.cookieHeaders() })`.
   */
  cookieHeaders (): string[] {
    return [...this[kState].setCookie ?? []]
  }

  /** Reads the stored session again, dropping unsaved changes. */
  load (): Promise<void> {
    return this[kEngine].load(this)
  }

  /** Ends the session: its data is gone and the cookie is cleared. */
  destroy (): Promise<void> {
    this.#read()
    return this[kEngine].destroy(this)
  }

  /**
   * Starts a fresh session: a new id in archive mode, a new creation time in
   * both, no user binding, carrying only the listed keys (none by default).
   * Call it on login and on logout; the old session is removed when the new
   * one is stored.
   */
  regenerate (keep?: readonly SessionKey[]): Promise<void> {
    if (keep !== undefined && !Array.isArray(keep)) throw new FST_SESSION_INVALID_ARGUMENT('session.regenerate(keep)', 'takes an array of the keys to carry over')
    this.#read()
    return this[kEngine].regenerate(this, keep)
  }

  #read (): SessionState {
    const state = this[kState]
    if (!state.loaded) this[kEngine].decode?.(this)
    return state
  }
}

// A property assigned on a session (`request.session.user = x`, the habit of
// other session plugins) would be lost without a word: the assignment finds
// no own property and no accessor, so it reaches this prototype and throws.
Object.setPrototypeOf(Session.prototype, new Proxy(Object.create(Object.prototype), {
  set (target, property, value, receiver) {
    if (typeof property === 'string') throw new FST_SESSION_PROPERTY_WRITE(property)
    return Reflect.set(target, property, value, receiver)
  }
}))
