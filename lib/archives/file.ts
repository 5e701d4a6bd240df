import { randomBytes } from 'node:crypto'
import { constants } from 'node:fs'
import * as fsPromises from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import path from 'node:path'
import {
  FST_SESSION_ARCHIVE_DENIED, FST_SESSION_ARCHIVE_FULL, FST_SESSION_ARCHIVE_INVALID_NAME, FST_SESSION_ARCHIVE_IO,
  FST_SESSION_INVALID_OPTION
} from '../errors.js'
import type { Archive } from './archive.js'
import { KeyedQueue } from '../keyed-queue.js'

/** The functions of `node:fs/promises` that `FileArchive` calls. */
export type FileArchiveFs = Pick<
  typeof fsPromises,
  'lstat' | 'mkdir' | 'open' | 'readdir' | 'rename' | 'rm' | 'rmdir' | 'unlink' | 'utimes' | 'writeFile'
>

/** Options of `FileArchive`. */
export interface FileArchiveOptions {
  /**
   * The directory holding the sessions, created (0700) on the first write.
   * A relative path is resolved against the working directory once, here.
   * @default path.resolve(process.cwd(), '.gen/sessions')
   */
  dir?: string
  /**
   * How often expired keys and emptied domains are removed from disk, in ms;
   * `0` turns the periodic sweep off (expired keys are still never returned).
   * @default 60_000
   */
  sweepIntervalMs?: number
  /**
   * How many values read recently are kept in memory. A kept value is
   * returned after one `lstat` shows its file unchanged (same inode, size and
   * times), so writes by other processes are always seen; `0` keeps none.
   * @default 10_000
   */
  readCacheSize?: number
  /**
   * The file system to use, for injecting faults in tests.
   * @default the functions of `node:fs/promises`
   */
  fs?: FileArchiveFs
}

const DOMAIN = /^[A-Za-z0-9_-]{8,128}$/
const KEY = /^[A-Za-z0-9_-]{1,64}$/
const KEY_FILE = /^[A-Za-z0-9_-]{1,64}\.json$/
const TEMP_FILE = /^\.[A-Za-z0-9_-]{1,64}\.[0-9a-f]{16}\.tmp$/
const READ_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK
/** The mtime of a key without ttl: 2400-01-01T00:00:00Z, within what ext4, XFS, btrfs, APFS and NTFS store. */
const NO_EXPIRY_MS = Date.UTC(2400, 0, 1)
/** A temp file this old belongs to a write that died (a live one renames it within milliseconds). */
const STALE_TEMP_MS = 60_000
const MAX_INTERVAL_MS = 2 ** 31 - 1

const FULL = new Set(['ENOSPC', 'EDQUOT'])
const DENIED = new Set(['EACCES', 'EPERM', 'EROFS'])
/** Read errors meaning "nothing there": missing, a symlink refused by O_NOFOLLOW, a file where a directory should be. */
const ABSENT = new Set(['ENOENT', 'ELOOP', 'ENOTDIR'])

function errorCode (error: unknown): string | undefined {
  return (error as { code?: string } | null)?.code
}

function noop (): void {}

/** A value read from a key file, with what identifies that version of the file. */
interface CachedRead {
  readonly value: string
  readonly ino: number
  readonly size: number
  readonly mtimeMs: number
  readonly ctimeMs: number
}

type FileStats = Pick<CachedRead, 'ino' | 'size' | 'mtimeMs' | 'ctimeMs'>

function sameFile (stats: FileStats, cached: CachedRead): boolean {
  return stats.ino === cached.ino && stats.size === cached.size && stats.mtimeMs === cached.mtimeMs && stats.ctimeMs === cached.ctimeMs
}

function absentIsFine (error: unknown): void {
  if (errorCode(error) !== 'ENOENT') throw error
}

// Keyed by the domain's absolute path, so every FileArchive of this process
// on one directory shares the order.
const queues = new KeyedQueue()

function serialise<T> (domainDir: string, work: () => Promise<T>): Promise<T> {
  return queues.run(domainDir, work)
}

/**
 * The default archive: each domain a directory and each key a file,
 * `<dir>/<domain>/<key>.json` holding the value as given, so a session is
 * `<dir>/<id>/session.json`. A key's expiry is its file's mtime; a key without
 * ttl gets 2400-01-01T00:00:00Z.
 *
 * - Only names matching `/^[A-Za-z0-9_-]{8,128}$/` (domains) and
 *   `/^[A-Za-z0-9_-]{1,64}$/` (keys) become paths; anything else is
 *   `FST_SESSION_ARCHIVE_INVALID_NAME` before the disk is touched.
 * - Writes go to a temp file (0600) in the domain's directory (0700) and are
 *   renamed over the key: a reader sees the old value or the new one.
 * - Symbolic links are never followed: a linked domain reads as absent and
 *   refuses writes, a linked key file reads as absent.
 * - Operations on one domain run one at a time within this process.
 * - A full disk is `FST_SESSION_ARCHIVE_FULL`, a permission problem
 *   `FST_SESSION_ARCHIVE_DENIED`, anything else `FST_SESSION_ARCHIVE_IO`,
 *   each with the system error as `cause`.
 *
 * @example
 * ```ts
 * app.register(fastifySessions, { secret, mode: 'archive', archive: new FileArchive({ dir: '/var/lib/my-app/sessions' }) })
 * ```
 */
export class FileArchive implements Archive {
  readonly #dir: string
  readonly #fs: FileArchiveFs
  readonly #timer: NodeJS.Timeout | undefined
  #sweeping: Promise<number> | undefined

  readonly #reads = new Map<string, CachedRead>()
  readonly #readCacheSize: number

  constructor ({
    dir = path.resolve(process.cwd(), '.gen/sessions'),
    sweepIntervalMs = 60_000,
    readCacheSize = 10_000,
    fs = fsPromises
  }: FileArchiveOptions = {}) {
    if (typeof dir !== 'string' || dir === '') {
      throw new FST_SESSION_INVALID_OPTION('dir', 'must be a non-empty path')
    }
    if (!Number.isSafeInteger(sweepIntervalMs) || sweepIntervalMs < 0 || sweepIntervalMs > MAX_INTERVAL_MS) {
      throw new FST_SESSION_INVALID_OPTION('sweepIntervalMs', `must be an integer from 0 to ${MAX_INTERVAL_MS}`)
    }
    if (!Number.isSafeInteger(readCacheSize) || readCacheSize < 0) {
      throw new FST_SESSION_INVALID_OPTION('readCacheSize', 'must be a whole number from 0')
    }
    this.#readCacheSize = readCacheSize
    this.#dir = path.resolve(dir)
    this.#fs = fs
    this.#timer = sweepIntervalMs === 0
      ? undefined
      : setInterval(() => this.sweep(), sweepIntervalMs).unref()
  }

  async get (domain: string, key: string): Promise<string | undefined> {
    const domainDir = this.#domainDir(domain)
    const file = this.#keyFile(domainDir, key)
    return await serialise(domainDir, () => this.#read(domainDir, file)).catch(this.#fail)
  }

  async set (domain: string, key: string, value: string, ttlMs?: number): Promise<void> {
    const domainDir = this.#domainDir(domain)
    const file = this.#keyFile(domainDir, key)
    const expiresAt = ttlMs === undefined ? NO_EXPIRY_MS : Math.min(Date.now() + ttlMs, NO_EXPIRY_MS)
    await serialise(domainDir, () => this.#write(domainDir, key, file, value, expiresAt / 1000)).catch(this.#fail)
  }

  async has (domain: string, key: string): Promise<boolean> {
    return (await this.get(domain, key)) !== undefined
  }

  async remove (domain: string, key: string): Promise<void> {
    const domainDir = this.#domainDir(domain)
    const file = this.#keyFile(domainDir, key)
    await serialise(domainDir, async () => {
      if (!await this.#isDomain(domainDir)) return
      await this.#fs.unlink(file).catch(absentIsFine)
      await this.#fs.rmdir(domainDir).catch(noop)
    }).catch(this.#fail)
  }

  async hasDomain (domain: string): Promise<boolean> {
    const domainDir = this.#domainDir(domain)
    return await serialise(domainDir, async () => {
      if (!await this.#isDomain(domainDir)) return false
      const now = Date.now()
      for (const name of await this.#fs.readdir(domainDir)) {
        if (!KEY_FILE.test(name)) continue
        const stats = await this.#fs.lstat(path.join(domainDir, name))
        if (stats.isFile() && stats.mtimeMs > now) return true
      }
      return false
    }).catch(this.#fail)
  }

  async removeDomain (domain: string): Promise<void> {
    const domainDir = this.#domainDir(domain)
    await serialise(domainDir, async () => {
      if (await this.#isDomain(domainDir)) await this.#fs.rm(domainDir, { recursive: true, force: true })
    }).catch(this.#fail)
  }

  /**
   * Removes expired key files, temp files left by writes that died, and then
   * domain directories left empty. Never rejects: a failure leaves the rest
   * to the next sweep.
   * @returns how many keys it removed
   */
  sweep (): Promise<number> {
    this.#sweeping ??= this.#sweepAll().finally(() => { this.#sweeping = undefined })
    return this.#sweeping
  }

  /** Stops the periodic sweep and waits for a running one; the files stay. */
  async close (): Promise<void> {
    clearInterval(this.#timer)
    await this.#sweeping
  }

  #domainDir (domain: string): string {
    if (typeof domain !== 'string' || !DOMAIN.test(domain)) throw new FST_SESSION_ARCHIVE_INVALID_NAME('domain', domain)
    return path.join(this.#dir, domain)
  }

  #keyFile (domainDir: string, key: string): string {
    if (typeof key !== 'string' || !KEY.test(key)) throw new FST_SESSION_ARCHIVE_INVALID_NAME('key', key)
    return path.join(domainDir, `${key}.json`)
  }

  /** Whether the domain's path is a real directory (a symbolic link is not). */
  async #isDomain (domainDir: string): Promise<boolean> {
    try {
      return (await this.#fs.lstat(domainDir)).isDirectory()
    } catch (error) {
      if (ABSENT.has(errorCode(error) as string)) return false
      throw error
    }
  }

  async #read (domainDir: string, file: string): Promise<string | undefined> {
    const cached = this.#reads.get(file)
    if (cached !== undefined) {
      // A file replaced by any writer has a new inode or new times: read it again.
      const stats = await this.#fs.lstat(file).catch(noop)
      if (stats !== undefined && sameFile(stats, cached) && stats.mtimeMs > Date.now()) return cached.value
      this.#reads.delete(file)
    }
    if (!await this.#isDomain(domainDir)) return undefined
    let handle: FileHandle
    try {
      handle = await this.#fs.open(file, READ_FLAGS)
    } catch (error) {
      if (ABSENT.has(errorCode(error) as string)) return undefined
      throw error
    }
    try {
      const stats = await handle.stat()
      if (!stats.isFile()) return undefined
      if (stats.mtimeMs > Date.now()) {
        const value = await handle.readFile('utf8')
        this.#remember(file, stats, value)
        return value
      }
    } finally {
      await handle.close()
    }
    // Expired. Removal is best effort: the key is gone for readers either way, and the sweep retries.
    await this.#fs.unlink(file).catch(noop)
    await this.#fs.rmdir(domainDir).catch(noop)
    return undefined
  }

  #remember (file: string, stats: FileStats, value: string): void {
    if (this.#readCacheSize === 0) return
    if (this.#reads.size >= this.#readCacheSize) this.#reads.delete(this.#reads.keys().next().value as string)
    this.#reads.set(file, { value, ino: stats.ino, size: stats.size, mtimeMs: stats.mtimeMs, ctimeMs: stats.ctimeMs })
  }

  async #write (domainDir: string, key: string, file: string, value: string, mtime: number): Promise<void> {
    let stats
    try {
      stats = await this.#fs.lstat(domainDir)
    } catch (error) {
      absentIsFine(error)
      await this.#fs.mkdir(this.#dir, { recursive: true, mode: 0o700 })
      try {
        await this.#fs.mkdir(domainDir, { mode: 0o700 })
      } catch (error) {
        // Another process made it meanwhile: use it if it is a real directory.
        if (errorCode(error) !== 'EEXIST') throw error
        stats = await this.#fs.lstat(domainDir)
      }
    }
    if (stats !== undefined && !stats.isDirectory()) {
      throw Object.assign(new Error(`${domainDir} is not a directory (a symbolic link is never followed)`), { code: 'ENOTDIR' })
    }
    const temp = path.join(domainDir, `.${key}.${randomBytes(8).toString('hex')}.tmp`)
    try {
      await this.#fs.writeFile(temp, value, { flag: 'wx', mode: 0o600 })
    } catch (error) {
      // EEXIST: the name was taken, so the file there is not ours to remove.
      if (errorCode(error) !== 'EEXIST') await this.#fs.unlink(temp).catch(noop)
      throw error
    }
    this.#reads.delete(file)
    try {
      await this.#fs.utimes(temp, mtime, mtime)
      await this.#fs.rename(temp, file)
    } catch (error) {
      await this.#fs.unlink(temp).catch(noop)
      throw error
    }
  }

  async #sweepAll (): Promise<number> {
    let names: string[]
    try {
      names = await this.#fs.readdir(this.#dir)
    } catch {
      return 0
    }
    let removed = 0
    for (const name of names) {
      if (!DOMAIN.test(name)) continue
      const domainDir = path.join(this.#dir, name)
      removed += await serialise(domainDir, () => this.#sweepDomain(domainDir)).catch(() => 0)
    }
    return removed
  }

  async #sweepDomain (domainDir: string): Promise<number> {
    if (!await this.#isDomain(domainDir)) return 0
    const now = Date.now()
    let removed = 0
    for (const name of await this.#fs.readdir(domainDir)) {
      const isKey = KEY_FILE.test(name)
      if (!isKey && !TEMP_FILE.test(name)) continue
      const file = path.join(domainDir, name)
      const stats = await this.#fs.lstat(file)
      if (!stats.isFile() || (isKey ? stats.mtimeMs > now : stats.ctimeMs > now - STALE_TEMP_MS)) continue
      await this.#fs.unlink(file)
      if (isKey) removed++
    }
    await this.#fs.rmdir(domainDir).catch(noop)
    return removed
  }

  readonly #fail = (error: unknown): never => {
    const code = errorCode(error) ?? 'an unknown error'
    const failure = FULL.has(code)
      ? new FST_SESSION_ARCHIVE_FULL()
      : DENIED.has(code)
        ? new FST_SESSION_ARCHIVE_DENIED()
        : new FST_SESSION_ARCHIVE_IO(code)
    // A system error's message and path name the session's files, hence its
    // id, and an error's message may reach the client: keep the code only.
    failure.cause = { code, syscall: (error as { syscall?: string } | null)?.syscall }
    throw failure
  }
}
