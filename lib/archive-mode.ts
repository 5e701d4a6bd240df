import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Archive } from './archives/archive.js'
import type { Codec, Json } from './codec.js'
import { CookieWriter, emitCookie, readCookie, sendCookie, type ParseCookie } from './cookie-header.js'
import { FST_SESSION_ARCHIVE_UNAVAILABLE } from './errors.js'
import { KeyedQueue } from './keyed-queue.js'
import type { ResolvedOptions } from './options.js'
import { createSessionId, IdSigner } from './session-id.js'
import {
  emptyState, keepOnly, kReply, kRequest, kState, parseStoredSession, resetState, restoreSession, Session, timedOut,
  type SessionEngine, type SessionState
} from './session.js'

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

function isArchiveError (error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code
  return typeof code === 'string' && code.startsWith('FST_SESSION_ARCHIVE_')
}

/** Archive errors keep their own code; anything else an archive throws becomes `FST_SESSION_ARCHIVE_UNAVAILABLE`. */
export function archiveFailure (error: unknown): Error {
  if (isArchiveError(error)) return error as Error
  const failure = new FST_SESSION_ARCHIVE_UNAVAILABLE(error instanceof Error ? error.message : String(error))
  failure.cause = error
  return failure
}

/**
 * Archive mode: the cookie carries a signed random id, the state lives in an
 * `Archive` under that id. Sessions are read in `onRequest` and stored in
 * `onSend` only when something changed, so anonymous traffic stores nothing.
 *
 * A save merges the keys this request changed into the state stored now, so
 * two requests changing different keys both keep their change, and a session
 * destroyed meanwhile stays destroyed. Within this process, saves and
 * destroys of one session run one at a time; across processes, the archive's
 * `compareAndSet` (when it has one) makes the merge atomic.
 */
export class ArchiveMode implements SessionEngine {
  readonly mode = 'archive' as const
  readonly #options: ResolvedOptions
  readonly #archive: Archive
  readonly #ids: IdSigner
  readonly #cookie: CookieWriter
  readonly #parse: ParseCookie
  readonly #locks = new KeyedQueue()

  readonly codec: Codec

  constructor (options: ResolvedOptions, codec: Codec, archive: Archive, parse: ParseCookie) {
    this.#options = options
    this.codec = codec
    this.#archive = archive
    this.#ids = new IdSigner(options.secrets)
    this.#cookie = new CookieWriter(options.idCookieName, options.cookie)
    this.#parse = parse
  }

  async start (request: FastifyRequest, reply: FastifyReply): Promise<Session> {
    const state = emptyState(undefined)
    state.dirty = new Set()
    resetState(state)
    state.loaded = true
    const session = new Session(this, request, reply, state)
    const value = readCookie(request, this.#cookie.name, this.#parse)
    if (value !== undefined && value !== '') {
      const verified = this.#ids.verify(value)
      if (verified === undefined) {
        this.#reject(session, 'the id cookie is not one this server signed')
      } else {
        await this.#read(session, verified.id)
        // Signed with an older secret: sign it again with the current one.
        if (!state.isNew && verified.secretIndex !== 0) state.touched = true
      }
    }
    state.id ??= createSessionId()
    return session
  }

  async #read (session: Session, id: string): Promise<void> {
    let text: string | undefined
    try {
      text = await this.#archive.get(id, SESSION_KEY)
    } catch (error) {
      throw archiveFailure(error)
    }
    if (text === undefined) return this.#reject(session, 'no session is stored under this id')
    const stored = parseStoredSession(text)
    if (typeof stored === 'string') return this.#reject(session, stored)
    const expired = timedOut(stored, Date.now(), this.#options)
    if (expired !== undefined) return this.#reject(session, expired)
    const state = session[kState]
    if (!restoreSession(state, stored, this.codec, session[kRequest].log)) return
    state.id = id
    state.source = id
  }

  #reject (session: Session, reason: string): void {
    session[kRequest].log.debug({ code: 'FST_SESSION_ID_REJECTED', reason },
      'fastify-sessions: the session id was not accepted; starting a fresh session')
  }

  async load (session: Session): Promise<void> {
    const state = session[kState]
    const id = state.source
    resetState(state)
    state.source = undefined
    state.replaced = undefined
    state.id = undefined
    if (id !== undefined) await this.#read(session, id)
    state.id ??= createSessionId()
  }

  async save (session: Session): Promise<void> {
    await this.#store(session, true)
  }

  async destroy (session: Session): Promise<void> {
    const state = session[kState]
    const ids = [state.source, state.replaced].filter((id) => id !== undefined)
    await Promise.all(ids.map((id) => this.#removeDomain(id)))
    resetState(state)
    state.source = undefined
    state.replaced = undefined
    state.id = createSessionId()
    emitCookie(session, this.#cookie.clear(session[kRequest]), true)
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
    const state = session[kState]
    const reply = session[kReply]
    if (state.changed || state.touched || state.replaced !== undefined || (this.#options.rolling && !state.isNew)) {
      return this.#store(session, false).then(() => sendCookie(session, reply))
    }
    sendCookie(session, reply)
  }

  async #store (session: Session, explicit: boolean): Promise<void> {
    const state = session[kState]
    const id = state.id as string
    const now = Date.now()
    if (state.created === 0) state.created = now
    const ttl = Math.min(this.#options.maxAge * 1000, state.created + this.#options.absoluteTimeout * 1000 - now)
    let stored: boolean
    try {
      stored = await this.#locks.run(id, () => this.#write(state, id, now, ttl))
      if (state.replaced !== undefined) {
        await this.#removeDomain(state.replaced)
        state.replaced = undefined
      }
    } catch (error) {
      // No cookie for state that was not stored; the error answers the request.
      state.changed = false
      state.touched = false
      state.setCookie = undefined
      throw archiveFailure(error)
    }
    state.changed = false
    state.touched = false
    state.dirty?.clear()
    if (!stored) {
      session[kRequest].log.debug({ code: 'FST_SESSION_DESTROYED_MEANWHILE' },
        'fastify-sessions: the session was destroyed by another request; its changes were dropped')
      resetState(state)
      state.source = undefined
      emitCookie(session, this.#cookie.clear(session[kRequest]), explicit)
      return
    }
    state.source = id
    emitCookie(session, this.#cookie.set(session[kRequest], this.#ids.sign(id), Math.ceil(ttl / 1000)), explicit)
  }

  /** Writes the session under `id`; false when the session it was read from is gone. */
  async #write (state: SessionState, id: string, now: number, ttl: number): Promise<boolean> {
    const archive = this.#archive
    for (let attempt = 0; attempt < SAVE_ATTEMPTS; attempt++) {
      let current: string | undefined
      let data = state.json
      if (state.source === id) {
        // The session existed when this request read it: merge this request's
        // changes into what is stored now, which other requests may have changed.
        current = await archive.get(id, SESSION_KEY)
        const stored = current === undefined ? 'nothing stored' : parseStoredSession(current)
        if (typeof stored === 'string') return false
        data = mergeChanges(stored.d, state)
      }
      const text = JSON.stringify({ c: state.created, t: now, d: data })
      if (archive.compareAndSet === undefined) {
        await archive.set(id, SESSION_KEY, text, ttl)
        return true
      }
      // Another process may have saved since the read above: read and merge again.
      if (await archive.compareAndSet(id, SESSION_KEY, current, text, ttl)) return true
    }
    throw new FST_SESSION_ARCHIVE_UNAVAILABLE(`one session was saved concurrently more than ${SAVE_ATTEMPTS} times in a row`)
  }

  async #removeDomain (id: string): Promise<void> {
    try {
      await this.#locks.run(id, () => this.#archive.removeDomain(id))
    } catch (error) {
      throw archiveFailure(error)
    }
  }

  close (): Promise<void> | undefined {
    return this.#archive.close?.()
  }
}
