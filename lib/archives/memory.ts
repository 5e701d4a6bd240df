import { FST_SESSION_ARCHIVE_AT_CAPACITY, FST_SESSION_INVALID_OPTION, FST_SESSION_UNSERIALIZABLE } from '../errors.js'
import type { Archive } from './archive.js'
import { refuseUnknownOptions } from './archive-options.js'

/** Options of `MemoryArchive`. Sizes are measured as JavaScript holds strings: 2 bytes per UTF-16 code unit. */
export interface MemoryArchiveOptions {
  /**
   * How many domains (sessions) are kept at most, new and established together.
   * Creating one beyond this first removes the oldest new domain; when every
   * domain is established, creating one rejects with
   * `FST_SESSION_ARCHIVE_AT_CAPACITY`.
   * @default 10_000
   */
  maxSessions?: number
  /**
   * How many new domains (created, not yet found by a `get`) are kept at most;
   * creating one beyond this first removes the oldest new domain. At most
   * `maxSessions`.
   * @default a tenth of maxSessions (at least 1)
   */
  maxNewSessions?: number
  /**
   * How many bytes the domains may hold in all: names, keys and values, at 2
   * bytes per UTF-16 code unit (`string.length * 2`), not counting the Maps
   * around them. Creating a domain beyond this first removes the oldest new
   * domains, and is refused with `FST_SESSION_ARCHIVE_AT_CAPACITY` when the
   * established ones fill it. A write to an existing domain is never refused:
   * it removes new domains to make room, and when only established ones are
   * left it may go past `maxBytes` (by at most what those sessions grow).
   * @default 67_108_864 (64 MiB)
   */
  maxBytes?: number
  /**
   * The largest value a single `set` may store, in bytes (`value.length * 2`).
   * A larger one rejects with `FST_SESSION_UNSERIALIZABLE`. At most `maxBytes`.
   * @default 1_048_576 (1 MiB)
   */
  maxValueBytes?: number
}

/** What a `MemoryArchive` holds now, for monitoring and tests. */
export interface MemoryArchiveUsage {
  /** Domains stored, new and established; expired ones may still count until they are met or swept. */
  sessions: number
  /** Domains not yet found by a `get`. */
  newSessions: number
  /** Bytes held, measured as `maxBytes` counts them. */
  bytes: number
}

interface Entry {
  readonly value: string
  /** Epoch ms after which the key is gone; `Infinity` when it has no ttl. */
  readonly expiresAt: number
}

interface Domain {
  readonly keys: Map<string, Entry>
  /** Its name, keys and values, at 2 bytes per UTF-16 code unit. */
  bytes: number
  /** Found by a `get` since it was created: never removed to make room. */
  established: boolean
}

const DEFAULT_MAX_SESSIONS = 10_000
const DEFAULT_MAX_BYTES = 64 * 1024 * 1024
const DEFAULT_MAX_VALUE_BYTES = 1024 * 1024
// A sweep walks every key: at most this often, so that a full archive under a
// flood spends little time on it.
const SWEEP_INTERVAL_MS = 100

function size (text: string): number {
  return text.length * 2
}

function positiveInteger (option: string, value: unknown): number {
  if (!Number.isSafeInteger(value) || (value as number) < 1) throw new FST_SESSION_INVALID_OPTION(option, 'must be a positive integer')
  return value as number
}

/**
 * An archive in this process's memory, bounded in sessions and bytes, with a
 * time-to-live per key. For tests and single-process servers; everything is
 * lost on restart.
 *
 * New domains are on probation until a `get` finds them (the browser came
 * back with the id): a flood of sessions that never return removes only
 * other new ones, the oldest first, and never logs out an established user.
 * When established sessions alone fill `maxSessions` or `maxBytes`, creating
 * a session rejects with `FST_SESSION_ARCHIVE_AT_CAPACITY` while existing
 * ones keep working.
 *
 * Expired keys are dropped when met. When `maxSessions` or `maxBytes` is
 * reached and some key may have expired, a sweep drops every expired key (at
 * most every 100 ms, as it walks them all), so expired sessions do not keep
 * live ones out. No timer runs.
 *
 * @example
 * ```ts
 * app.register(fastifySessions, { secret, mode: 'archive', archive: new MemoryArchive({ maxSessions: 50_000, maxBytes: 256 * 1024 * 1024 }) })
 * ```
 */
export class MemoryArchive implements Archive {
  readonly #domains = new Map<string, Domain>()
  // The new domains in the order they were created: the first is the oldest.
  readonly #new = new Set<string>()
  readonly #maxSessions: number
  readonly #maxNewSessions: number
  readonly #maxBytes: number
  readonly #maxValueBytes: number
  #bytes = 0
  #newBytes = 0
  /** No key expires before this epoch ms: a sweep before it would find nothing. */
  #nextExpiry = Infinity
  #lastSweep = -Infinity

  constructor (options: MemoryArchiveOptions = {}) {
    refuseUnknownOptions('MemoryArchive', options, ['maxSessions', 'maxNewSessions', 'maxBytes', 'maxValueBytes'])
    this.#maxSessions = positiveInteger('maxSessions', options.maxSessions ?? DEFAULT_MAX_SESSIONS)
    this.#maxNewSessions = positiveInteger('maxNewSessions', options.maxNewSessions ?? Math.max(1, Math.floor(this.#maxSessions / 10)))
    if (this.#maxNewSessions > this.#maxSessions) throw new FST_SESSION_INVALID_OPTION('maxNewSessions', 'must not be more than maxSessions')
    this.#maxBytes = positiveInteger('maxBytes', options.maxBytes ?? DEFAULT_MAX_BYTES)
    this.#maxValueBytes = positiveInteger('maxValueBytes', options.maxValueBytes ?? Math.min(DEFAULT_MAX_VALUE_BYTES, this.#maxBytes))
    if (this.#maxValueBytes > this.#maxBytes) throw new FST_SESSION_INVALID_OPTION('maxValueBytes', 'must not be more than maxBytes')
  }

  /** A get that finds a value establishes its domain. */
  async get (domain: string, key: string): Promise<string | undefined> {
    const stored = this.#domains.get(domain)
    const entry = stored === undefined ? undefined : this.#live(domain, stored, key)
    if (stored === undefined || entry === undefined) return undefined
    if (!stored.established) {
      stored.established = true
      this.#new.delete(domain)
      this.#newBytes -= stored.bytes
    }
    return entry.value
  }

  async set (domain: string, key: string, value: string, ttlMs?: number): Promise<void> {
    this.#set(domain, this.#domains.get(domain), key, value, ttlMs)
  }

  /**
   * Sets `key` to `value` only if it holds `expected` now (`undefined`: only
   * if it is absent). Nothing runs between the check and the write, so saves
   * merge without reading the session again unless another request changed it.
   * @returns whether it did
   */
  async compareAndSet (domain: string, key: string, expected: string | undefined, value: string, ttlMs?: number): Promise<boolean> {
    const stored = this.#domains.get(domain)
    const entry = stored === undefined ? undefined : this.#live(domain, stored, key)
    if (entry?.value !== expected) return false
    // A key that was not live may have been the domain's last: #live then dropped the domain.
    this.#set(domain, entry !== undefined || stored === undefined ? stored : this.#domains.get(domain), key, value, ttlMs)
    return true
  }

  async has (domain: string, key: string): Promise<boolean> {
    const stored = this.#domains.get(domain)
    return stored !== undefined && this.#live(domain, stored, key) !== undefined
  }

  async remove (domain: string, key: string): Promise<void> {
    const stored = this.#domains.get(domain)
    if (stored !== undefined) this.#dropKey(domain, stored, key)
  }

  async hasDomain (domain: string): Promise<boolean> {
    const stored = this.#domains.get(domain)
    return stored !== undefined && this.#alive(domain, stored)
  }

  async removeDomain (domain: string): Promise<void> {
    this.#dropDomain(domain)
  }

  /**
   * Keeps every session: an archive passed in may be shared by several apps,
   * and closing one of them must not log out the users of the others.
   */
  async close (): Promise<void> {}

  /** What the archive holds now. */
  usage (): MemoryArchiveUsage {
    return { sessions: this.#domains.size, newSessions: this.#new.size, bytes: this.#bytes }
  }

  /** `set`, given the domain's entry as `#domains` holds it now (undefined when it holds none). */
  #set (domain: string, found: Domain | undefined, key: string, value: string, ttlMs: number | undefined): void {
    if (size(value) > this.#maxValueBytes) {
      throw new FST_SESSION_UNSERIALIZABLE(key, `it is ${size(value)} bytes, over the memory archive's maxValueBytes of ${this.#maxValueBytes}; store less in the session or raise maxValueBytes`)
    }
    const expiresAt = ttlMs === undefined ? Infinity : Date.now() + ttlMs
    let stored = found
    if (stored !== undefined && !this.#alive(domain, stored)) stored = undefined
    const previous = stored?.keys.get(key)
    const growth = size(key) + size(value) - (previous === undefined ? 0 : size(key) + size(previous.value))
    if (stored === undefined) {
      this.#makeRoom(size(domain) + growth)
      stored = { keys: new Map(), bytes: 0, established: false }
      this.#domains.set(domain, stored)
      this.#new.add(domain)
      this.#resize(stored, size(domain))
    } else if (this.#bytes + growth > this.#maxBytes) {
      this.#evictNew(growth, domain)
    }
    stored.keys.set(key, { value, expiresAt })
    this.#resize(stored, growth)
    if (expiresAt < this.#nextExpiry) this.#nextExpiry = expiresAt
  }

  /** Makes room for a domain of `bytes` about to be created, removing new domains, oldest first, or rejects. */
  #makeRoom (bytes: number): void {
    const full = (): boolean => this.#domains.size >= this.#maxSessions || this.#bytes + bytes > this.#maxBytes
    if (full()) this.#sweep()
    if (this.#domains.size - this.#new.size >= this.#maxSessions || this.#bytes - this.#newBytes + bytes > this.#maxBytes) {
      throw new FST_SESSION_ARCHIVE_AT_CAPACITY()
    }
    while (this.#new.size >= this.#maxNewSessions || full()) this.#dropDomain(this.#oldestNew())
  }

  /** Removes new domains other than `keep`, oldest first, until `growth` more bytes fit or none is left. */
  #evictNew (growth: number, keep: string): void {
    for (const domain of this.#new) {
      if (this.#bytes + growth <= this.#maxBytes) return
      if (domain !== keep) this.#dropDomain(domain)
    }
  }

  #oldestNew (): string {
    return this.#new.values().next().value as string
  }

  /** Drops every expired key, when one may have expired and the last sweep is SWEEP_INTERVAL_MS old. */
  #sweep (): void {
    const now = Date.now()
    if (now < this.#nextExpiry || now < this.#lastSweep + SWEEP_INTERVAL_MS) return
    this.#lastSweep = now
    let next = Infinity
    for (const [domain, stored] of this.#domains) {
      for (const [key, entry] of stored.keys) {
        if (entry.expiresAt <= now) this.#dropKey(domain, stored, key)
        else if (entry.expiresAt < next) next = entry.expiresAt
      }
    }
    this.#nextExpiry = next
  }

  /** Whether the domain holds a live key; one that holds none is dropped. */
  #alive (domain: string, stored: Domain): boolean {
    const now = Date.now()
    for (const [key, entry] of stored.keys) {
      if (entry.expiresAt > now) return true
      this.#dropKey(domain, stored, key)
    }
    return false
  }

  /** The key's entry if it has not expired; an expired one is dropped, and its domain with it when it was the last. */
  #live (domain: string, stored: Domain, key: string): Entry | undefined {
    const entry = stored.keys.get(key)
    if (entry === undefined || entry.expiresAt > Date.now()) return entry
    this.#dropKey(domain, stored, key)
    return undefined
  }

  #resize (stored: Domain, bytes: number): void {
    stored.bytes += bytes
    this.#bytes += bytes
    if (!stored.established) this.#newBytes += bytes
  }

  #dropKey (domain: string, stored: Domain, key: string): void {
    const entry = stored.keys.get(key)
    if (entry === undefined) return
    stored.keys.delete(key)
    this.#resize(stored, -(size(key) + size(entry.value)))
    if (stored.keys.size === 0) this.#dropDomain(domain)
  }

  #dropDomain (domain: string): void {
    const stored = this.#domains.get(domain)
    if (stored === undefined) return
    this.#domains.delete(domain)
    this.#bytes -= stored.bytes
    if (this.#new.delete(domain)) this.#newBytes -= stored.bytes
  }
}
