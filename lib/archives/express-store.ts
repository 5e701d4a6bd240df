import { FST_SESSION_ARCHIVE_UNAVAILABLE, FST_SESSION_INVALID_OPTION } from '../errors.js'
import { KeyedQueue } from '../keyed-queue.js'
import type { Archive } from './archive.js'
import { refuseUnknownOptions } from './archive-options.js'

/**
 * What the archive hands an express-session store's `set`: an object shaped
 * like an express-session session, whose `cookie` carries the expiry that
 * stores read to set their own time-to-live, and whose `field` property
 * (`fastifySessions` by default) holds the archive's keys.
 */
export interface ExpressStoreSession {
  cookie: {
    /** The time-to-live in ms (session-file-store reads it); `null` when a key has none. */
    originalMaxAge: number | null
    /** The same, as express-session's `Cookie` has it (memorystore reads it). */
    maxAge?: number
    /** When the session expires (connect-redis and connect-pg-simple read it); `null` when a key has none. */
    expires: Date | null
    httpOnly: boolean
    path: string
  }
  [field: string]: unknown
}

/**
 * The part of an express-session store the archive uses: `get`, `set` and
 * `destroy`, each answering through its callback (`(error, result)`) or the
 * promise it returns. Any store written for express-session fits:
 * connect-redis, connect-pg-simple, memorystore, session-file-store...
 */
export interface ExpressStore {
  get (sid: string, callback: (error: any, session?: any) => void): unknown
  set (sid: string, session: ExpressStoreSession, callback: (error?: any) => void): unknown
  destroy (sid: string, callback: (error?: any) => void): unknown
}

/** Options of `ExpressStoreArchive`. */
export interface ExpressStoreArchiveOptions {
  /**
   * The property of each stored session object that holds the archive's keys.
   * @default 'fastifySessions'
   */
  field?: string
}

interface Entry {
  readonly value: string
  /** Epoch ms after which the key is gone; `null` when it has no ttl. */
  readonly expiresAt: number | null
}

type Keys = Map<string, Entry>

type Settle = (error?: unknown, result?: unknown) => void

function isThenable (value: unknown): value is PromiseLike<unknown> {
  return typeof (value as { then?: unknown } | null)?.then === 'function'
}

/**
 * Calls a store method with `args` and a callback, settling on whichever
 * answers: the callback, or the promise it returns when the method takes no
 * callback (it declares no parameter for one). A rejection always counts.
 */
function callStore (store: ExpressStore, method: 'get' | 'set' | 'destroy', args: unknown[]): Promise<unknown> {
  return new Promise((resolve, reject) => {
    let settled = false
    const settle: Settle = (error, result) => {
      if (settled) return
      settled = true
      if (error === undefined || error === null) resolve(result)
      else reject(error)
    }
    const fn = store[method] as (...args: unknown[]) => unknown
    let returned: unknown
    try {
      returned = fn.call(store, ...args, settle)
    } catch (error) {
      settle(error ?? new Error('the store threw'))
      return
    }
    if (!isThenable(returned)) return
    returned.then(
      (result) => { if (fn.length <= args.length) settle(null, result) },
      (error: unknown) => { settle(error ?? new Error('the store rejected')) }
    )
  })
}

/** A safe word from a store's error (a system or driver code such as `ECONNREFUSED`), never its message: messages may hold a session id, a path or data. */
function errorCode (error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code
  return typeof code === 'string' && /^[A-Z][A-Z0-9_]{0,39}$/.test(code) ? ` (${code})` : ''
}

function unavailable (method: string, error: unknown): Error {
  return new FST_SESSION_ARCHIVE_UNAVAILABLE(`the express-session store's ${method} failed${errorCode(error)}; check the store and what it connects to`)
}

function isEntry (entry: unknown): entry is Entry {
  const { value, expiresAt } = (entry ?? {}) as Partial<Record<keyof Entry, unknown>>
  return typeof value === 'string' && (expiresAt === null || (typeof expiresAt === 'number' && Number.isFinite(expiresAt)))
}

function live (entry: Entry | undefined, now: number): entry is Entry {
  return entry !== undefined && (entry.expiresAt === null || entry.expiresAt > now)
}

/**
 * An archive on any express-session store (connect-redis, connect-pg-simple,
 * memorystore, session-file-store, ...), so sessions can live wherever an
 * Express app already keeps them.
 *
 * Each domain (session id) is one session object of the store, under the
 * session id itself:
 *
 * ```js
 * { cookie: { originalMaxAge, maxAge, expires, httpOnly: true, path: '/' },
 *   fastifySessions: { session: { value: '<text>', expiresAt: 1767225600000 } } }
 * ```
 *
 * Every key carries its own expiry (`expiresAt`, epoch ms, or `null`), which
 * `get`, `has` and `hasDomain` check, so a ttl shorter than the store's
 * granularity (connect-redis and connect-pg-simple count in seconds) still
 * ends on time. The `cookie` gives the store the latest expiry of the
 * domain's keys in the fields stores read for their own time-to-live
 * (`expires`, `originalMaxAge`, `maxAge`), so the store drops the object
 * when its last key expires. A key set without a ttl leaves the cookie's
 * expiry `null`: the object then lives as long as the store's own default
 * (connect-redis and connect-pg-simple: one day unless their `ttl` option
 * says otherwise). The plugin always gives a ttl.
 *
 * Setting or removing a key reads the object, changes it and writes it
 * whole. Express stores have no compare-and-set, so this archive has none:
 * writes to one session are run one at a time within this process, and
 * concurrent saves of one session from different processes are
 * last-writer-wins (one of them is lost). Run one process, or route each
 * session to one process (sticky sessions), when requests of one session
 * may overlap; otherwise use `RedisArchive`, whose `compareAndSet` merges
 * them.
 *
 * The store's `touch` is never called: it renews only the store's own
 * time-to-live (connect-redis, connect-pg-simple) and not the expiry kept
 * with each key, so every renewal is a `set` that writes both.
 *
 * A failing store call rejects with `FST_SESSION_ARCHIVE_UNAVAILABLE`, whose
 * message names the method and the error's code only: never the store's own
 * message, which may hold a session id (session-file-store's paths do).
 * A `get` failing with `ENOENT` (session-file-store's answer for a missing
 * id) is a missing session. Give session-file-store `retries: 0`: by default
 * it retries a missing file five times and logs each retry, path included.
 *
 * The archive never closes the store: close it (and its client) yourself.
 *
 * @example
 * ```ts
 * import { createClient } from 'redis'
 * import { RedisStore } from 'connect-redis'
 *
 * const client = await createClient({ url: process.env.REDIS_URL }).connect()
 * app.register(fastifySessions, { secret, mode: 'archive', archive: new ExpressStoreArchive(new RedisStore({ client })) })
 * ```
 */
export class ExpressStoreArchive implements Archive {
  readonly #store: ExpressStore
  readonly #field: string
  readonly #writes = new KeyedQueue()

  constructor (store: ExpressStore, options: ExpressStoreArchiveOptions = {}) {
    refuseUnknownOptions('ExpressStoreArchive', options, ['field'])
    const { field = 'fastifySessions' } = options
    for (const method of ['get', 'set', 'destroy'] as const) {
      if (typeof (store as Partial<ExpressStore> | null | undefined)?.[method] !== 'function') {
        throw new FST_SESSION_INVALID_OPTION('store', `must be an express-session store with get, set and destroy methods; ${method} is missing`)
      }
    }
    if (typeof field !== 'string' || field === '' || field === 'cookie' || field === '__proto__') {
      throw new FST_SESSION_INVALID_OPTION('field', 'must be a property name other than "cookie", such as "fastifySessions"')
    }
    this.#store = store
    this.#field = field
  }

  async get (domain: string, key: string): Promise<string | undefined> {
    const entry = (await this.#read(domain)).get(key)
    return live(entry, Date.now()) ? entry.value : undefined
  }

  async set (domain: string, key: string, value: string, ttlMs?: number): Promise<void> {
    await this.#writes.run(domain, async () => {
      const now = Date.now()
      const keys = this.#live(await this.#read(domain), now)
      keys.set(key, { value, expiresAt: ttlMs === undefined ? null : now + Math.max(1, Math.ceil(ttlMs)) })
      await this.#write(domain, keys, now)
    })
  }

  async has (domain: string, key: string): Promise<boolean> {
    return await this.get(domain, key) !== undefined
  }

  async remove (domain: string, key: string): Promise<void> {
    await this.#writes.run(domain, async () => {
      const now = Date.now()
      const keys = this.#live(await this.#read(domain), now)
      if (keys.delete(key)) await this.#write(domain, keys, now)
    })
  }

  async hasDomain (domain: string): Promise<boolean> {
    return this.#live(await this.#read(domain), Date.now()).size > 0
  }

  async removeDomain (domain: string): Promise<void> {
    await this.#writes.run(domain, () => this.#destroy(domain))
  }

  /** The domain's keys as stored, expired ones included; none for a missing or foreign object. */
  async #read (domain: string): Promise<Keys> {
    let session: unknown
    try {
      session = await callStore(this.#store, 'get', [domain])
    } catch (error) {
      if ((error as { code?: unknown } | null)?.code === 'ENOENT') return new Map()
      throw unavailable('get', error)
    }
    const stored = (session as Record<string, unknown> | null | undefined)?.[this.#field]
    const keys: Keys = new Map()
    if (typeof stored !== 'object' || stored === null) return keys
    for (const [key, entry] of Object.entries(stored)) {
      if (isEntry(entry)) keys.set(key, { value: entry.value, expiresAt: entry.expiresAt })
    }
    return keys
  }

  #live (keys: Keys, now: number): Keys {
    for (const [key, entry] of keys) if (!live(entry, now)) keys.delete(key)
    return keys
  }

  /** Stores the domain's keys, with the latest of their expiries as the object's; no keys, no object. */
  async #write (domain: string, keys: Keys, now: number): Promise<void> {
    if (keys.size === 0) return this.#destroy(domain)
    let expiresAt: number | null = 0
    for (const entry of keys.values()) {
      if (entry.expiresAt === null) {
        expiresAt = null
        break
      }
      expiresAt = Math.max(expiresAt, entry.expiresAt)
    }
    const ttlMs = expiresAt === null ? null : expiresAt - now
    const session: ExpressStoreSession = {
      cookie: ttlMs === null
        ? { originalMaxAge: null, expires: null, httpOnly: true, path: '/' }
        : { originalMaxAge: ttlMs, maxAge: ttlMs, expires: new Date(now + ttlMs), httpOnly: true, path: '/' },
      [this.#field]: Object.fromEntries(keys)
    }
    try {
      await callStore(this.#store, 'set', [domain, session])
    } catch (error) {
      throw unavailable('set', error)
    }
  }

  async #destroy (domain: string): Promise<void> {
    try {
      await callStore(this.#store, 'destroy', [domain])
    } catch (error) {
      throw unavailable('destroy', error)
    }
  }
}
