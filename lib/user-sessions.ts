import { createHmac, randomBytes } from 'node:crypto'
import type { Archive } from './archives/archive.js'
import { archiveFailure } from './archive-failure.js'
import { FST_SESSION_ARCHIVE_UNAVAILABLE, FST_SESSION_INVALID_ARGUMENT } from './errors.js'
import { KeyedQueue } from './keyed-queue.js'
import type { SessionMode } from './options.js'

/** One live session of a user, as `app.sessions.list()` gives it. */
export interface SessionInfo {
  /** Names the session to `app.sessions.revoke()`; safe to show (it is neither the cookie nor the id). Compare with `request.session.handle` to mark "this device". */
  readonly handle: string
  /** Where the session lives. */
  readonly mode: SessionMode
  /** When the session was first stored. */
  readonly createdAt: Date
  /** When the session was last stored (a request that only reads it does not count). */
  readonly lastSeenAt: Date
}

/** A user's session in the user's index: where it lives and what ends it. */
export interface IndexEntry {
  /** 'a': an archive-mode session, `i` its id; 'c': a cookie-mode session, `i` its record. */
  m: 'a' | 'c'
  i: string
  /** Created (ms). */
  c: number
  /** The latest the session can live (ms): its creation plus the absolute timeout. */
  e: number
}

/** What a live indexed session looks like now: when it was last stored, or undefined when it is gone. */
export type Liveness = (entry: IndexEntry) => Promise<number | undefined>

/** Ends the session an entry names. */
export type Ending = (entry: IndexEntry) => Promise<void>

type Index = Record<string, IndexEntry>

/** The archive key of a user's index. */
const INDEX_KEY = 'sessions'
/** How many sessions a user keeps: binding one more ends the oldest. */
export const MAX_USER_SESSIONS = 1000
const USER_KEY_LENGTH = 22
const HANDLE = /^[A-Za-z0-9_-]{44}$/
const ATTEMPTS = 8

function parseIndex (text: string | undefined): Index {
  if (text === undefined) return Object.create(null)
  try {
    const value = JSON.parse(text) as unknown
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return Object.assign(Object.create(null), value) as Index
  } catch {}
  return Object.create(null)
}

/**
 * The sessions of each user: an index per user, kept in the archive as one
 * more domain (`user-<key>`), whose key is an HMAC of the user id, so the
 * archive never sees a user id in a name. Only binding, unbinding and ending
 * sessions touch it: a request that binds no user pays nothing.
 */
export class UserSessions {
  readonly #archive: () => Archive
  /** One key a secret: the first names the indexes of new bindings, every one is searched, so a rotation loses no binding. */
  readonly #keys: readonly Buffer[]
  readonly #locks = new KeyedQueue()
  readonly #alive: Liveness
  readonly #end: Ending

  constructor (archive: () => Archive, secrets: readonly string[], alive: Liveness, end: Ending) {
    this.#archive = archive
    this.#keys = secrets.map((secret) => Buffer.from(`fastify-sessions users ${secret}`))
    this.#alive = alive
    this.#end = end
  }

  /** A new handle for a session of `userId`: the user's key, then random characters. */
  newHandle (userId: string): string {
    return this.#userKeys(userId)[0] + randomBytes(16).toString('base64url').slice(0, 44 - USER_KEY_LENGTH)
  }

  /** Adds a session to its user's index, dropping entries past their time, and ending the oldest beyond `MAX_USER_SESSIONS`. */
  async add (handle: string, entry: IndexEntry, now: number): Promise<void> {
    const ended: IndexEntry[] = []
    await this.#update(handle, (index) => {
      for (const [other, item] of Object.entries(index)) if (item.e <= now) delete index[other]
      index[handle] = entry
      const handles = Object.keys(index).sort((a, b) => (index[a] as IndexEntry).c - (index[b] as IndexEntry).c)
      while (handles.length > MAX_USER_SESSIONS) {
        const oldest = handles.shift() as string
        ended.push(index[oldest] as IndexEntry)
        delete index[oldest]
      }
    })
    await Promise.all(ended.map(this.#end))
  }

  /** Removes a session from its user's index. */
  async remove (handle: string): Promise<void> {
    await this.#update(handle, (index) => { delete index[handle] })
  }

  async list (userId: string, now: number): Promise<SessionInfo[]> {
    const live: SessionInfo[] = []
    for (const userKey of this.#userKeys(checkUserId(userId, 'app.sessions.list(userId)'))) {
      const index = parseIndex(await this.#read(userKey))
      const dead: string[] = []
      await Promise.all(Object.entries(index).map(async ([handle, entry]) => {
        const lastSeen = entry.e > now ? await this.#alive(entry) : undefined
        if (lastSeen === undefined) {
          dead.push(handle)
          return
        }
        live.push({ handle, mode: entry.m === 'a' ? 'archive' : 'cookie', createdAt: new Date(entry.c), lastSeenAt: new Date(lastSeen) })
      }))
      if (dead.length > 0) await this.#updateKey(userKey, (current) => { for (const handle of dead) delete current[handle] })
    }
    return live.sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime() || (a.handle < b.handle ? -1 : 1))
  }

  async revoke (handle: string): Promise<boolean> {
    if (typeof handle !== 'string' || !HANDLE.test(handle)) return false
    const userKey = handle.slice(0, USER_KEY_LENGTH)
    const found = parseIndex(await this.#read(userKey))[handle]
    if (found === undefined) return false
    // Ended first, then taken out of the index: a failure leaves it listed, and revocable again.
    await this.#end(found)
    await this.#updateKey(userKey, (index) => { delete index[handle] })
    return true
  }

  async revokeUser (userId: string, except: string | undefined): Promise<number> {
    const userKeys = this.#userKeys(checkUserId(userId, 'app.sessions.revokeUser(userId)'))
    if (except !== undefined && typeof except !== 'string') {
      throw new FST_SESSION_INVALID_ARGUMENT('app.sessions.revokeUser(userId, { except })', 'takes the handle of the session to keep')
    }
    let ended = 0
    for (const userKey of userKeys) {
      const doomed = Object.entries(parseIndex(await this.#read(userKey))).filter(([handle]) => handle !== except)
      await Promise.all(doomed.map(([, entry]) => this.#end(entry)))
      if (doomed.length > 0) await this.#updateKey(userKey, (index) => { for (const [handle] of doomed) delete index[handle] })
      ended += doomed.length
    }
    return ended
  }

  /** The user's index keys, one a secret, the current one first, without repeats. */
  #userKeys (userId: string): string[] {
    return [...new Set(this.#keys.map((key) => createHmac('sha256', key).update(userId).digest('base64url').slice(0, USER_KEY_LENGTH)))]
  }

  async #read (userKey: string): Promise<string | undefined> {
    try {
      return await this.#archive().get(`user-${userKey}`, INDEX_KEY)
    } catch (error) {
      throw archiveFailure(error)
    }
  }

  #update (handle: string, change: (index: Index) => void): Promise<void> {
    return this.#updateKey(handle.slice(0, USER_KEY_LENGTH), change)
  }

  /** Read, change and write back a user's index: atomically across processes where the archive has `compareAndSet`. */
  #updateKey (userKey: string, change: (index: Index) => void): Promise<void> {
    const domain = `user-${userKey}`
    return this.#locks.run(domain, () => this.#change(domain, change)).catch((error: unknown) => { throw archiveFailure(error) })
  }

  async #change (domain: string, change: (index: Index) => void): Promise<void> {
    const archive = this.#archive()
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const text = await archive.get(domain, INDEX_KEY)
      const index = parseIndex(text)
      change(index)
      const entries = Object.values(index)
      if (entries.length === 0) {
        if (text !== undefined) await archive.removeDomain(domain)
        return
      }
      const next = JSON.stringify(index)
      if (next === text) return
      const ttl = Math.max(1, Math.max(...entries.map((entry) => entry.e)) - Date.now())
      if (archive.compareAndSet === undefined) await archive.set(domain, INDEX_KEY, next, ttl)
      else if (!await archive.compareAndSet(domain, INDEX_KEY, text, next, ttl)) continue
      // A domain is established once a read finds it: the index of a user
      // with one session must not be the first to go when new sessions flood in.
      if (text === undefined) await archive.get(domain, INDEX_KEY)
      return
    }
    throw new FST_SESSION_ARCHIVE_UNAVAILABLE(`one user's session index was changed concurrently more than ${ATTEMPTS} times in a row`)
  }
}

function checkUserId (userId: unknown, call: string): string {
  if (typeof userId !== 'string' || userId === '') throw new FST_SESSION_INVALID_ARGUMENT(call, 'takes the user id given to bindUser()')
  return userId
}

/** Where a session lives, as its user's index names it. */
export interface IndexedSession {
  readonly handle: string | undefined
  readonly retiredHandle: string | undefined
  readonly userChanged: boolean
  readonly created: number
}

/**
 * After a session was stored: retires the handle that `regenerate()` or a
 * new binding replaced, and adds a new binding to its user's index.
 */
export async function syncUserIndex (users: UserSessions, session: IndexedSession, entry: Pick<IndexEntry, 'm' | 'i'>, absoluteTimeout: number, now: number): Promise<void> {
  const { handle, retiredHandle } = session
  if (retiredHandle !== undefined && retiredHandle !== handle) await users.remove(retiredHandle)
  if (session.userChanged && handle !== undefined) {
    await users.add(handle, { ...entry, c: session.created, e: session.created + absoluteTimeout * 1000 }, now)
  }
}
