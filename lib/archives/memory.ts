import { FST_SESSION_INVALID_OPTION } from '../errors.js'
import type { Archive } from './archive.js'

/** Options of `MemoryArchive`. */
export interface MemoryArchiveOptions {
  /**
   * How many domains (sessions) are kept at most. Storing a new domain beyond
   * this evicts the least recently used one; a `get` or `set` makes a domain
   * the most recently used.
   * @default 10_000
   */
  maxSessions?: number
}

interface Entry {
  readonly value: string
  /** Epoch ms after which the key is gone; `Infinity` when it has no ttl. */
  readonly expiresAt: number
}

type Keys = Map<string, Entry>

/**
 * An archive in this process's memory: bounded, least recently used evicted,
 * with a time-to-live per key. Expired keys are dropped when met, so no timer
 * runs per key. For tests and single-process servers; everything is lost on
 * restart.
 *
 * @example
 * ```ts
 * app.register(fastifySessions, { secret, mode: 'archive', archive: new MemoryArchive({ maxSessions: 50_000 }) })
 * ```
 */
export class MemoryArchive implements Archive {
  // A Map keeps insertion order: re-inserting a domain on use makes the first
  // entry the least recently used.
  readonly #domains = new Map<string, Keys>()
  readonly #maxSessions: number

  constructor ({ maxSessions = 10_000 }: MemoryArchiveOptions = {}) {
    if (!Number.isSafeInteger(maxSessions) || maxSessions < 1) {
      throw new FST_SESSION_INVALID_OPTION('maxSessions', 'must be a positive integer')
    }
    this.#maxSessions = maxSessions
  }

  async get (domain: string, key: string): Promise<string | undefined> {
    const keys = this.#domains.get(domain)
    if (keys === undefined) return undefined
    this.#domains.delete(domain)
    this.#domains.set(domain, keys)
    return this.#live(domain, keys, key)?.value
  }

  async set (domain: string, key: string, value: string, ttlMs?: number): Promise<void> {
    const expiresAt = ttlMs === undefined ? Infinity : Date.now() + ttlMs
    let keys = this.#domains.get(domain)
    if (keys === undefined) {
      if (this.#domains.size >= this.#maxSessions) this.#domains.delete(this.#domains.keys().next().value as string)
      keys = new Map()
    } else {
      this.#domains.delete(domain)
    }
    this.#domains.set(domain, keys)
    keys.set(key, { value, expiresAt })
  }

  async has (domain: string, key: string): Promise<boolean> {
    const keys = this.#domains.get(domain)
    return keys !== undefined && this.#live(domain, keys, key) !== undefined
  }

  async remove (domain: string, key: string): Promise<void> {
    const keys = this.#domains.get(domain)
    if (keys !== undefined && keys.delete(key) && keys.size === 0) this.#domains.delete(domain)
  }

  async hasDomain (domain: string): Promise<boolean> {
    const keys = this.#domains.get(domain)
    if (keys === undefined) return false
    const now = Date.now()
    for (const [key, entry] of keys) {
      if (entry.expiresAt > now) return true
      keys.delete(key)
    }
    this.#domains.delete(domain)
    return false
  }

  async removeDomain (domain: string): Promise<void> {
    this.#domains.delete(domain)
  }

  /** Forgets every session. */
  async close (): Promise<void> {
    this.#domains.clear()
  }

  /** The key's entry if it has not expired; an expired one is dropped, and its domain with it when it was the last. */
  #live (domain: string, keys: Keys, key: string): Entry | undefined {
    const entry = keys.get(key)
    if (entry === undefined || entry.expiresAt > Date.now()) return entry
    keys.delete(key)
    if (keys.size === 0) this.#domains.delete(domain)
    return undefined
  }
}
