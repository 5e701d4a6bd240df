import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify'
import type { Codec, Json, UnknownTypeError } from './codec.js'
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
  /** Whether the request brought no valid session. */
  isNew: boolean
  /** Whether the stored state has been read (cookie mode decodes on first use). */
  loaded: boolean
  /** Whether data changed since the session was read or saved. */
  changed: boolean
  /** Whether `touch()` asked for the cookie to be re-issued. */
  touched: boolean
  /** The cookie value the state was read from: a sealed token, or a signed id. */
  source: string | undefined
  /** The `Set-Cookie` value this response carries for the session, once decided. */
  setCookie: string | undefined
  /** The `Set-Cookie` value written straight onto the raw response by an explicit call. */
  rawCookie: string | undefined
  /** Archive mode: the session's id (a fresh one until the session is stored). */
  id: string | undefined
  /** Archive mode: the id whose domain `regenerate()` retires when the session is next stored. */
  replaced: string | undefined
  /** Archive mode: the keys set or deleted since the session was read, merged into the stored state on save. */
  dirty: Set<string> | undefined
}

/** What each mode implements; the `Session` delegates storage to it. */
export interface SessionEngine {
  readonly mode: SessionMode
  readonly codec: Codec
  /** Reads the stored state into a session not read yet; only cookie mode leaves a session unread until its first use. */
  decode? (session: Session): void
  load (session: Session): Promise<void>
  save (session: Session): Promise<void>
  destroy (session: Session): Promise<void>
  regenerate (session: Session, keep: readonly string[] | undefined): Promise<void>
  /** Runs in `onSend`: stores what changed and sets the cookie header. */
  commit (session: Session): Promise<void> | void
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
    isNew: true,
    loaded: false,
    changed: false,
    touched: false,
    source,
    setCookie: undefined,
    rawCookie: undefined,
    id: undefined,
    replaced: undefined,
    dirty: undefined
  }
}

/** Gives a state empty data of its own, as for a request that brought no session. */
export function resetState (state: SessionState): void {
  state.data = Object.create(null)
  state.json = Object.create(null)
  state.created = 0
  state.isNew = true
  state.changed = false
  state.touched = false
  state.dirty?.clear()
}

/** Keeps only the listed keys (all when `keep` is undefined) and marks the state changed: what `regenerate()` carries over. */
export function keepOnly (state: SessionState, keep: readonly string[] | undefined): void {
  if (keep !== undefined) {
    for (const key of Object.keys(state.data)) {
      if (!keep.includes(key)) {
        delete state.data[key]
        delete state.json[key]
        state.dirty?.add(key)
      }
    }
  }
  state.created = 0
  state.changed = true
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

/** A session as both modes store it, sealed or archived: creation time, last save (both ms) and the data. */
export interface StoredSession {
  c: number
  t: number
  d: Record<string, Json>
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
  const { c, t, d } = value as Record<string, unknown>
  if (!Number.isSafeInteger(c) || !Number.isSafeInteger(t) || typeof d !== 'object' || d === null || Array.isArray(d)) {
    return 'the stored payload is not a session'
  }
  return value as StoredSession
}

/** Which timeout a stored session is past at `now`, if any: both are checked on the server. */
export function timedOut (stored: StoredSession, now: number, options: ResolvedOptions): string | undefined {
  if (now - stored.t >= options.maxAge * 1000) return 'idle timeout'
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
  state.isNew = false
  return true
}

/** `request.session`: one request's view of its session. */
export class Session {
  readonly [kEngine]: SessionEngine
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

  /** The value under `key`, or `undefined`. Mutating it in place is not saved: `set()` it again. */
  get<K extends SessionKey> (key: K): SessionValue<K> | undefined {
    return this.#read().data[key] as SessionValue<K> | undefined
  }

  /**
   * Stores `value` under `key`. The value is checked and copied here: one that
   * cannot be stored throws `FST_SESSION_UNSERIALIZABLE` naming the key.
   * Setting `undefined` deletes the key.
   */
  set<K extends SessionKey> (key: K, value: SessionValue<K>): void {
    if (value === undefined) {
      this.delete(key)
      return
    }
    const json = this[kEngine].codec.toJson(value, key)
    const state = this.#read()
    state.json[key] = json
    state.data[key] = value
    state.changed = true
    state.dirty?.add(key)
  }

  /** Removes `key`. */
  delete (key: SessionKey): void {
    const state = this.#read()
    if (!(key in state.data)) return
    delete state.data[key]
    delete state.json[key]
    state.changed = true
    state.dirty?.add(key)
  }

  /** Whether `key` holds a value. */
  has (key: SessionKey): boolean {
    return key in this.#read().data
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

  /** Asks for the session to be stored and its cookie re-issued, so its idle timeout starts over. */
  touch (): void {
    this.#read().touched = true
  }

  /**
   * Stores the session and sets its cookie now, also on the raw response.
   * Replies that bypass `onSend` (`reply.hijack()`, server-sent events) call it
   * before writing the first byte.
   */
  save (): Promise<void> {
    this.#read()
    return this[kEngine].save(this)
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
   * Starts a fresh session (a new id in archive mode, a new creation time in
   * both) carrying over all data, or only the listed keys. Call it on login.
   */
  regenerate (keep?: readonly SessionKey[]): Promise<void> {
    this.#read()
    return this[kEngine].regenerate(this, keep)
  }

  #read (): SessionState {
    const state = this[kState]
    if (!state.loaded) this[kEngine].decode?.(this)
    return state
  }
}
