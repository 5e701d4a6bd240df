import { randomBytes } from 'node:crypto'
import { constants, existsSync, readFileSync } from 'node:fs'
import type { Stats } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { setImmediate as nextTick, setTimeout as sleep } from 'node:timers/promises'
import {
  FST_SESSION_ARCHIVE_AT_CAPACITY, FST_SESSION_ARCHIVE_DENIED, FST_SESSION_ARCHIVE_FULL, FST_SESSION_ARCHIVE_INVALID_NAME,
  FST_SESSION_ARCHIVE_IO, FST_SESSION_INVALID_OPTION
} from '../errors.js'
import type { Archive } from './archive.js'
import { KeyedQueue } from '../keyed-queue.js'
import { RandomPool } from '../random-pool.js'
import { refuseUnknownOptions } from './archive-options.js'
import { syncFileSystem } from './file-system.js'
import type { FileArchiveFs, FileArchiveHandle } from './file-system.js'

export type { FileArchiveFs, FileArchiveHandle } from './file-system.js'

/** Options of `FileArchive`. */
export interface FileArchiveOptions {
  /**
   * The directory holding the sessions, created (0700) on the first write or
   * by `ready()`. A relative path is resolved against the working directory
   * once, here. It must belong to the server's user and be writable by no
   * one else (`chmod 700`), or every call is `FST_SESSION_ARCHIVE_DENIED`.
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
   * How many sessions (domains) are stored at most, new and established
   * together. Creating one beyond it first removes the oldest new domain;
   * when every stored domain is established, creating one rejects with
   * `FST_SESSION_ARCHIVE_AT_CAPACITY` (writes to stored ones still succeed).
   * @default 50_000
   */
  maxSessions?: number
  /**
   * How many new domains (created, never found by a `get` since) are kept;
   * creating one beyond it first removes the oldest new domain. Counted per
   * process: with several processes on one dir, each keeps its own quota.
   * @default Math.max(1, Math.floor(maxSessions / 10))
   */
  maxNewSessions?: number
  /**
   * How many values read or written recently are kept in memory at most. A
   * kept value is returned after one `fstat` (of its file held open, see
   * `readCacheOpenFiles`) or `lstat` (of its path) shows its file unchanged
   * (same inode, size, times and a single name), so writes by other processes
   * are always seen; `compareAndSet` checks its expected value the same way.
   * `0` keeps none.
   * @default 10_000
   */
  readCacheSize?: number
  /**
   * How many bytes of values the read cache holds at most; the values read
   * longest ago make room.
   * @default 8 * 1024 * 1024
   */
  readCacheBytes?: number
  /** A value larger than this (in bytes) is never kept in the read cache. @default 64 * 1024 */
  readCacheMaxValueBytes?: number
  /**
   * For how many of the kept values the file stays open, so that showing it
   * unchanged is one `fstat` of the open file instead of an `lstat` of its
   * path, which looks up every directory on the way. A file renamed over or
   * removed, by any process, has no name left, which `fstat` shows. The
   * values read or written last keep theirs; `0` keeps no file open.
   * @default the lesser of readCacheSize and an eighth of the files this process may open (`/proc/self/limits`; 0 where it cannot be read), for each archive
   */
  readCacheOpenFiles?: number
  /**
   * The file system calls to make. The default makes a request's calls
   * synchronously: on a local disk each takes a few microseconds, where a
   * round trip through libuv's thread pool costs tens of microseconds of CPU.
   * Pass `node:fs/promises` itself to make every call on the thread pool, for
   * a disk where one call may take milliseconds (a network file system); or
   * functions of your own, for injecting faults in tests.
   * @default syncFileSystem: `node:fs`'s synchronous calls behind the promise API
   */
  fs?: FileArchiveFs
}

const FILE_ARCHIVE_OPTIONS = ['dir', 'sweepIntervalMs', 'maxSessions', 'maxNewSessions', 'readCacheSize', 'readCacheBytes', 'readCacheMaxValueBytes', 'readCacheOpenFiles', 'fs']
const DOMAIN = /^[A-Za-z0-9_-]{8,128}$/
const KEY = /^[A-Za-z0-9_-]{1,64}$/
const KEY_FILE = /^[A-Za-z0-9_-]{1,64}\.json$/
const TEMP_FILE = /^\.[A-Za-z0-9_-]{1,64}\.[0-9a-f]{16}\.tmp$/
/** A domain's lock, in the archive's dir: `.<domain>.lock`. */
const LOCK_FILE = /^\.[A-Za-z0-9_-]{8,128}\.lock$/
/** A lock's holder, in the archive's dir: `.<16 hex>.holder`, a file of one process that its locks are hard links to. */
const HOLDER_FILE = /^\.[0-9a-f]{16}\.holder$/
/** A holder of a process on another host is removed once unused this long: its process makes a new one if it still runs. */
const STALE_HOLDER_MS = 60 * 60_000
/** Holder files kept for the next locks; more are made while more locks are held at once, and removed after. */
const MAX_FREE_HOLDERS = 8
/** What a removal leaves when it dies half-way: a renamed domain, or a broken lock. */
const LEFT_OVER = /^\.(?:removed\.[0-9a-f]{16}|[A-Za-z0-9_-]{8,128}\.lock\.[0-9a-f]{16}\.broken)$/

/**
 * A new domain's directory carries the sticky bit (0o1000) until a `get`
 * finds it: a mark every process sees, that a read learns from the `fstat`
 * it makes anyway and clears with one `fchmod`. In a directory only its
 * owner may write to, the bit changes nothing else.
 */
const NEW_MARK = 0o1000
const DIR_FLAGS = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW
const READ_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK
const LOCK_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW
const WRITE_FLAGS = LOCK_FLAGS
/** The mtime of a key without ttl: 2400-01-01T00:00:00Z, within what ext4, XFS, btrfs, APFS and NTFS store. */
const NO_EXPIRY_MS = Date.UTC(2400, 0, 1)
/** A temp file this old belongs to a write that died (a live one renames it within milliseconds). */
const STALE_TEMP_MS = 60_000
/** A lock held this long belongs to a process that died or hangs: it is broken. */
const LOCK_STALE_MS = 5_000
const MAX_LOCK_POLL_MS = 20
/** How many entries of the archive's dir the sweep handles at once, before it yields. */
const SWEEP_BATCH = 64
const MAX_INTERVAL_MS = 2 ** 31 - 1

const FULL = new Set(['ENOSPC', 'EDQUOT'])
const DENIED = new Set(['EACCES', 'EPERM', 'EROFS'])
/** Read errors meaning "nothing there": missing, a symlink refused by O_NOFOLLOW, a file where a directory should be. */
const ABSENT = new Set(['ENOENT', 'ELOOP', 'ENOTDIR'])

const HOST = os.hostname()
/** Tells this process's locks from those of a process that had its pid before (a restarted container). */
const INCARNATION = randomBytes(8).toString('hex')
/** Read once: `process.pid` is a system call each time. */
const PID = process.pid
/* c8 ignore next */
const UID = process.getuid?.()
/**
 * On Linux `/proc/self/fd/<fd>/<name>` reaches `<name>` inside the directory
 * that `fd` holds open, without resolving the directory's path again: what
 * `openat()` gives C. Elsewhere the checked path is used again.
 */
/* c8 ignore next: every Linux has it */
const FD_DIR = existsSync('/proc/self/fd') ? '/proc/self/fd' : undefined

/**
 * How many files a process may open, from the text of `/proc/<pid>/limits`
 * (Node raises its soft limit to the hard one at start-up); 0 where there is
 * no such text or it does not say (outside Linux), so that the read cache
 * holds no file open where what `fstat` shows of a replaced file is untested.
 */
export function openFileLimitOf (limits: string | undefined): number {
  const limit = /^Max open files +(\S+)/m.exec(limits ?? '')?.[1]
  if (limit === 'unlimited') return Infinity
  const files = Number(limit)
  return Number.isSafeInteger(files) && files > 0 ? files : 0
}

/* c8 ignore next: every Linux has it */
const OPEN_FILE_LIMIT = openFileLimitOf(existsSync('/proc/self/limits') ? readFileSync('/proc/self/limits', 'utf8') : undefined)

function errorCode (error: unknown): string | undefined {
  return (error as { code?: string } | null)?.code
}

function noop (): void {}

// Temp, holder and removal names carry 8 random bytes: one call into the CSPRNG per 256 names, not one per write.
const names = new RandomPool(8, 256)

function hex (): string {
  return names.text('hex')
}

function systemError (code: string, syscall: string): Error {
  return Object.assign(new Error(`${syscall}: ${code}`), { code, syscall })
}

/** Owned by this process's user (where the platform has users). */
function owned (stats: Stats): boolean {
  /* c8 ignore next */
  return UID === undefined || stats.uid === UID
}

/** A directory this archive may use: its user's, and no one else may change what is in it. */
function trustedDir (stats: Stats): boolean {
  return stats.isDirectory() && owned(stats) && (stats.mode & 0o022) === 0
}

/**
 * A key file this archive may read: a regular file of its user with no other
 * name (none at all when a rename replaced it since it was opened).
 */
function trustedFile (stats: Stats): boolean {
  return stats.isFile() && stats.nlink <= 1 && owned(stats)
}

function untrusted (): Error {
  const error = new FST_SESSION_ARCHIVE_DENIED()
  error.cause = { code: 'EUNTRUSTED', syscall: 'stat' }
  return error
}

/** A value read from a key file, with what identifies that version of the file. */
interface CachedRead {
  readonly value: string
  readonly ino: number
  readonly size: number
  readonly mtimeMs: number
  readonly ctimeMs: number
  /** That version of the file, held open; `undefined` when it is checked through its path. */
  handle: FileArchiveHandle | undefined
}

type FileStats = Pick<Stats, 'ino' | 'size' | 'mtimeMs' | 'ctimeMs' | 'nlink'>

function sameFile (stats: FileStats, cached: CachedRead): boolean {
  return stats.ino === cached.ino && stats.size === cached.size && stats.mtimeMs === cached.mtimeMs &&
    stats.ctimeMs === cached.ctimeMs && stats.nlink === 1
}

function absentIsFine (error: unknown): void {
  if (errorCode(error) !== 'ENOENT') throw error
}

/** Whether the process `pid` runs on this host. */
function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return errorCode(error) === 'EPERM'
  }
}

/**
 * Whether a lock whose file says `text` and has the mtime `mtimeMs` may be
 * broken: its holder (`<pid> <incarnation> <since> <host>`) is gone from this
 * host, or it was taken longer than `LOCK_STALE_MS` ago. This archive's own
 * locks say `-` for `since`, and their mtime is the time they were taken.
 */
function staleLock (text: string, mtimeMs: number): boolean {
  const [pid, incarnation, since, host] = text.split(' ')
  const takenAt = Number(since)
  if (Date.now() - (Number.isFinite(takenAt) ? takenAt : mtimeMs) > LOCK_STALE_MS) return true
  if (host !== HOST) return false
  const holder = Number(pid)
  if (holder === PID) return incarnation !== INCARNATION
  return Number.isSafeInteger(holder) && holder > 0 && !alive(holder)
}

// Keyed by the domain's absolute path, so every FileArchive of this process
// on one directory shares the order, and takes the lock file one at a time.
const queues = new KeyedQueue()

function serialise<T> (domainDir: string, work: () => Promise<T>): Promise<T> {
  return queues.run(domainDir, work)
}

/** A domain directory held open, and the path that reaches inside it without resolving its name again. */
interface OpenDomain {
  readonly handle: FileArchiveHandle
  readonly stats: Stats
  readonly inside: string
  /** Made by this call, under the domain's lock: it holds no key yet. */
  readonly made: boolean
}

type Release = () => Promise<void>

/** A holder file of this process, and its inode, which every lock linked to it shares. */
interface Holder {
  readonly file: string
  readonly ino: number
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
 *   renamed over the key: a reader sees the old value or the new one, and a
 *   process killed mid-write leaves at most a temp file the sweep removes.
 * - Safe with several processes on one directory (PM2, `node:cluster`):
 *   `set`, `compareAndSet`, `remove`, `removeDomain` and the sweep's removals
 *   of a domain hold that domain's lock, `<dir>/.<domain>.lock`: a hard link
 *   to a holder file of the process (`<dir>/.<hex>.holder`, holding its pid),
 *   made by `link()`, which fails while the name exists, with the holder's
 *   mtime set to the time it is taken. A lock whose holder died (on
 *   this host) is broken at once; any lock older than 5 seconds is broken,
 *   so a process killed while holding one blocks the others 5 seconds at
 *   most. Reads take no lock: a rename is atomic. A `compareAndSet` against a
 *   domain that a `removeDomain` removed resolves false and never creates it
 *   again; `removeDomain` first renames the domain away, so it is gone for
 *   every reader at once.
 * - Trusts nothing it did not make: the dir must belong to the server's user
 *   and be writable by no one else (else `FST_SESSION_ARCHIVE_DENIED`); a
 *   domain directory or key file that is a symbolic link, has another owner,
 *   is writable by others or (a key file) has a second hard link reads as
 *   absent and is never written through. A domain is opened once per call
 *   (`O_DIRECTORY | O_NOFOLLOW`) and what happens in it goes through that
 *   handle (on Linux `/proc/self/fd`), so swapping a domain for a link
 *   mid-call cannot make the archive read, write or remove anything outside
 *   its dir. The dir itself is the operator's: it is checked once and may be
 *   reached through a link.
 * - Bounded (see `maxSessions`, `maxNewSessions`): a domain is new from
 *   the write that creates it until a `get` finds it, marked by the sticky
 *   bit on its directory, which every process sees and a read learns from
 *   the `fstat` it makes anyway. New domains make room for each other,
 *   oldest first; established ones are never removed to make room, and when
 *   they fill the archive, creating a domain rejects with
 *   `FST_SESSION_ARCHIVE_AT_CAPACITY`. Across processes the total is exact
 *   where the file system counts subdirectories in a directory's link count
 *   (ext4 up to 65,000, XFS, tmpfs), give or take one per process creating
 *   at the same moment; elsewhere it is the last sweep's count plus this
 *   process's changes. The quota of new domains is kept per process.
 * - A hot read (a value in the read cache) is one `fstat` of the file it
 *   holds open (an `lstat` of its path beyond `readCacheOpenFiles`); the
 *   first read of a new domain adds one `fchmod`. A write keeps its value,
 *   and its file open, in the cache, so the reads and the `compareAndSet` of
 *   the next save of that session each cost one `fstat` too. By default the
 *   calls are synchronous (see `fs`).
 * - A full disk is `FST_SESSION_ARCHIVE_FULL`, a permission problem
 *   `FST_SESSION_ARCHIVE_DENIED`, anything else `FST_SESSION_ARCHIVE_IO`,
 *   each with the system error's code and syscall (never its path) as `cause`.
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
  /** Set once the dir was found to be this user's and writable by no one else. */
  #dirChecked = false

  readonly #reads = new Map<string, CachedRead>()
  #readBytes = 0
  readonly #readCacheSize: number
  readonly #readCacheBytes: number
  readonly #readCacheMaxValueBytes: number
  readonly #readCacheOpenFiles: number
  /** The files of the kept values whose file is held open, in the order they were kept. */
  readonly #openReads = new Set<string>()
  readonly #maxSessions: number
  readonly #maxNewSessions: number
  /** The new domains this process knows of (its own, and those the sweep found), oldest first. */
  readonly #newDomains = new Set<string>()
  /** How many domains are stored, as of the last sweep and this process's changes since. */
  #domainCount = 0
  /** The holder files of this archive that hold no lock now. */
  readonly #holders: Holder[] = []

  constructor (options: FileArchiveOptions = {}) {
    refuseUnknownOptions('FileArchive', options, FILE_ARCHIVE_OPTIONS)
    const {
      dir = path.resolve(process.cwd(), '.gen/sessions'),
      sweepIntervalMs = 60_000,
      maxSessions = 50_000,
      maxNewSessions = Math.max(1, Math.floor(maxSessions / 10)),
      readCacheSize = 10_000,
      readCacheBytes = 8 * 1024 * 1024,
      readCacheMaxValueBytes = 64 * 1024,
      readCacheOpenFiles = Math.min(readCacheSize, Math.floor(OPEN_FILE_LIMIT / 8)),
      fs = syncFileSystem
    } = options
    if (typeof dir !== 'string' || dir === '') {
      throw new FST_SESSION_INVALID_OPTION('dir', 'must be a non-empty path')
    }
    if (!Number.isSafeInteger(sweepIntervalMs) || sweepIntervalMs < 0 || sweepIntervalMs > MAX_INTERVAL_MS) {
      throw new FST_SESSION_INVALID_OPTION('sweepIntervalMs', `must be an integer from 0 to ${MAX_INTERVAL_MS}`)
    }
    if (!Number.isSafeInteger(maxSessions) || maxSessions < 1) {
      throw new FST_SESSION_INVALID_OPTION('maxSessions', 'must be a positive integer')
    }
    if (!Number.isSafeInteger(maxNewSessions) || maxNewSessions < 1 || maxNewSessions > maxSessions) {
      throw new FST_SESSION_INVALID_OPTION('maxNewSessions', 'must be a positive integer no larger than maxSessions')
    }
    for (const [option, value] of Object.entries({ readCacheSize, readCacheBytes, readCacheMaxValueBytes, readCacheOpenFiles })) {
      if (!Number.isSafeInteger(value) || value < 0) throw new FST_SESSION_INVALID_OPTION(option, 'must be a whole number from 0')
    }
    this.#maxSessions = maxSessions
    this.#maxNewSessions = maxNewSessions
    this.#readCacheSize = readCacheSize
    this.#readCacheBytes = readCacheBytes
    this.#readCacheMaxValueBytes = readCacheMaxValueBytes
    this.#readCacheOpenFiles = readCacheOpenFiles
    this.#dir = path.resolve(dir)
    this.#fs = fs
    this.#timer = sweepIntervalMs === 0
      ? undefined
      : setInterval(() => this.sweep(), sweepIntervalMs).unref()
  }

  /**
   * Creates the dir (0700) if it is missing and checks that this process can
   * use it: its user's, writable by no one else, and a file can be created in
   * it. Rejects with `FST_SESSION_ARCHIVE_DENIED` (or `_FULL`, `_IO`) otherwise.
   */
  async ready (): Promise<void> {
    try {
      await this.#checkDir(true)
      const probe = path.join(this.#dir, `.ready.${hex()}.tmp`)
      await this.#fs.writeFile(probe, '', { flag: 'wx', mode: 0o600 })
      await this.#fs.unlink(probe)
    } catch (error) {
      this.#fail(error)
    }
  }

  async get (domain: string, key: string): Promise<string | undefined> {
    const domainDir = this.#domainDir(domain)
    const file = this.#keyFile(domainDir, key)
    const found = await serialise(domainDir, () => this.#read(domainDir, key, file)).catch(this.#fail)
    if (typeof found !== 'number') return found
    // Expired. Removal is best effort: the key is gone for readers either way, and the sweep retries.
    await this.#dropExpired(domain, domainDir, key, found).catch(noop)
    return undefined
  }

  async set (domain: string, key: string, value: string, ttlMs?: number): Promise<void> {
    const domainDir = this.#domainDir(domain)
    const file = this.#keyFile(domainDir, key)
    const mtime = expiryOf(ttlMs)
    await this.#exclusive(domain, domainDir, true, async () => {
      const open = await this.#openDomain(domainDir, true) as OpenDomain
      try {
        await this.#write(open, key, file, value, mtime)
      } finally {
        await open.handle.close()
      }
    }).catch(this.#fail)
  }

  /**
   * Sets `key` to `value` only if it holds `expected` now (`undefined`: only
   * if it is absent), under the domain's lock, so it is atomic with respect to
   * every write and removal of the domain by any process on this dir.
   * @returns whether it did
   */
  async compareAndSet (domain: string, key: string, expected: string | undefined, value: string, ttlMs?: number): Promise<boolean> {
    const domainDir = this.#domainDir(domain)
    const file = this.#keyFile(domainDir, key)
    const mtime = expiryOf(ttlMs)
    const creates = expected === undefined
    return await this.#exclusive(domain, domainDir, creates, async () => {
      const open = await this.#openDomain(domainDir, creates)
      if (open === undefined) return false
      try {
        // A directory this call made holds nothing, so `expected` is undefined.
        if (!open.made && await this.#readIn(open, key, file) !== expected) return false
        await this.#write(open, key, file, value, mtime)
        return true
      } finally {
        await open.handle.close()
      }
    }, false).catch(this.#fail)
  }

  async has (domain: string, key: string): Promise<boolean> {
    return (await this.get(domain, key)) !== undefined
  }

  async remove (domain: string, key: string): Promise<void> {
    const domainDir = this.#domainDir(domain)
    const file = this.#keyFile(domainDir, key)
    await this.#exclusive(domain, domainDir, false, async () => {
      const open = await this.#openDomain(domainDir, false)
      if (open === undefined) return
      try {
        this.#forget(file)
        await this.#fs.unlink(path.join(open.inside, `${key}.json`)).catch(absentIsFine)
        await this.#removeIfEmpty(domainDir, open)
      } finally {
        await open.handle.close()
      }
    }, undefined).catch(this.#fail)
  }

  async hasDomain (domain: string): Promise<boolean> {
    const domainDir = this.#domainDir(domain)
    return await serialise(domainDir, async () => {
      if (!await this.#checkDir(false)) return false
      const open = await this.#openDomain(domainDir, false)
      if (open === undefined) return false
      try {
        const now = Date.now()
        for (const name of await this.#fs.readdir(open.inside)) {
          if (!KEY_FILE.test(name)) continue
          // Removed since the listing by a process that holds the lock: not a key.
          const stats = await this.#fs.lstat(path.join(open.inside, name)).catch(absentIsFine)
          if (stats !== undefined && trustedFile(stats) && stats.mtimeMs > now) return true
        }
        return false
      } finally {
        await open.handle.close()
      }
    }).catch(this.#fail)
  }

  async removeDomain (domain: string): Promise<void> {
    const domainDir = this.#domainDir(domain)
    await this.#exclusive(domain, domainDir, false, async () => {
      const open = await this.#openDomain(domainDir, false)
      if (open === undefined) return
      try {
        await this.#removeDomainDir(domainDir, open)
      } finally {
        await open.handle.close()
      }
    }, undefined).catch(this.#fail)
  }

  /**
   * Removes expired key files, temp files left by writes that died, and then
   * domain directories left empty; breaks locks whose holders died; counts
   * the domains and learns which are new. What bounds it: it streams the dir
   * (`opendir`, never a whole listing in memory), handles 64 entries at a
   * time and yields to the event loop after each batch; it looks at a domain
   * without its lock and takes the lock only to remove what expired, without
   * waiting (a domain someone holds waits for the next sweep), for the few
   * system calls that takes. Never rejects: a failure leaves the rest to the
   * next sweep.
   * @returns how many keys it removed
   */
  sweep (): Promise<number> {
    this.#sweeping ??= this.#sweepAll().finally(() => { this.#sweeping = undefined })
    return this.#sweeping
  }

  /**
   * Stops the periodic sweep and waits for a running one; the sessions' files
   * stay, the unused lock holders go, and the read cache closes the files it
   * holds open.
   */
  async close (): Promise<void> {
    clearInterval(this.#timer)
    await this.#sweeping
    for (const file of [...this.#openReads]) this.#closeKept(file)
    for (const holder of this.#holders.splice(0)) await this.#fs.unlink(holder.file).catch(noop)
  }

  #domainDir (domain: string): string {
    if (typeof domain !== 'string' || !DOMAIN.test(domain)) throw new FST_SESSION_ARCHIVE_INVALID_NAME('domain', domain)
    return path.join(this.#dir, domain)
  }

  #keyFile (domainDir: string, key: string): string {
    if (typeof key !== 'string' || !KEY.test(key)) throw new FST_SESSION_ARCHIVE_INVALID_NAME('key', key)
    return path.join(domainDir, `${key}.json`)
  }

  /**
   * Whether the dir exists (creating it first when `create`), after checking
   * once that it is this user's and writable by no one else, as are the
   * directories on the way that this call created.
   */
  async #checkDir (create: boolean): Promise<boolean> {
    if (this.#dirChecked) return true
    const made = create ? await this.#fs.mkdir(this.#dir, { recursive: true, mode: 0o700 }) : undefined
    let stats: Stats
    try {
      stats = await this.#fs.stat(this.#dir)
    } catch (error) {
      if (!create && ABSENT.has(errorCode(error) as string)) return false
      throw error
    }
    if (!trustedDir(stats)) throw untrusted()
    if (made !== undefined) {
      for (let dir = path.dirname(this.#dir); dir.length >= made.length; dir = path.dirname(dir)) {
        if (!trustedDir(await this.#fs.lstat(dir))) throw untrusted()
      }
    }
    this.#dirChecked = true
    return true
  }

  /**
   * Opens a domain's directory without following a link, and checks it; a
   * missing or untrusted one is `undefined` when reading. When `create`, a
   * missing one is made (0700) and an unusable one is an error.
   */
  async #openDomain (domainDir: string, create: boolean): Promise<OpenDomain | undefined> {
    let handle: FileArchiveHandle
    let made = false
    try {
      handle = await this.#fs.open(domainDir, DIR_FLAGS)
    } catch (error) {
      const code = errorCode(error) as string
      if (!ABSENT.has(code)) throw error
      if (!create) return undefined
      if (code !== 'ENOENT') throw systemError('ENOTDIR', 'open')
      const domain = path.basename(domainDir)
      await this.#makeRoom()
      try {
        await this.#fs.mkdir(domainDir, { mode: 0o700 | NEW_MARK })
        made = true
        this.#domainCount++
        this.#newDomains.add(domain)
      } catch (error) {
        // Made meanwhile by a process that does not lock: use it if it is a real directory.
        if (errorCode(error) !== 'EEXIST') throw error
      }
      try {
        handle = await this.#fs.open(domainDir, DIR_FLAGS)
      } catch (error) {
        if (ABSENT.has(errorCode(error) as string)) throw systemError('ENOTDIR', 'open')
        throw error
      }
    }
    let stats: Stats
    try {
      stats = await handle.stat()
    } catch (error) {
      await handle.close()
      throw error
    }
    if (!trustedDir(stats)) {
      await handle.close()
      if (create) throw untrusted()
      return undefined
    }
    /* c8 ignore next */
    const inside = FD_DIR === undefined ? domainDir : `${FD_DIR}/${handle.fd}`
    return { handle, stats, inside, made }
  }

  /**
   * Runs `work` holding the domain's lock: first within this process, then
   * between processes. When the dir is missing and `create` is false there
   * is nothing to lock, and `absent` is the answer.
   */
  async #exclusive<T> (domain: string, domainDir: string, create: boolean, work: () => Promise<T>, absent?: T): Promise<T> {
    return await serialise(domainDir, async () => {
      if (!await this.#checkDir(create)) return absent as T
      const release = await this.#lock(domain, true) as Release
      try {
        return await work()
      } finally {
        await release()
      }
    })
  }

  /**
   * Takes the lock of a domain: links a holder file of this process to
   * `<dir>/.<domain>.lock`, which fails while the name exists, after setting
   * the holder's mtime to now, the time the lock is taken. A link allocates
   * no inode, where creating a file does: on ext4 that is most of the cost of
   * a lock. A lock whose holder is gone is broken. When `wait` is false, a
   * lock held by someone else is `undefined` at once.
   */
  async #lock (domain: string, wait: boolean): Promise<Release | undefined> {
    const file = path.join(this.#dir, `.${domain}.lock`)
    let holder = this.#holders.pop() ?? await this.#newHolder()
    let taken = false
    try {
      for (let poll = 1, renewed = false; !taken; poll = Math.min(poll * 2, MAX_LOCK_POLL_MS)) {
        try {
          const now = Date.now() / 1000
          await this.#fs.utimes(holder.file, now, now)
          await this.#fs.link(holder.file, file)
          taken = true
        } catch (error) {
          const code = errorCode(error)
          if (code === 'ENOENT' && !renewed) {
            // The holder file was removed (by a sweep that judged it unused): make another.
            holder = await this.#newHolder()
            renewed = true
            continue
          }
          if (code !== 'EEXIST') throw error
          if (await this.#breakIfStale(file)) continue
          if (!wait) return undefined
          await sleep(poll * (0.5 + Math.random()))
        }
      }
    } finally {
      if (!taken) this.#holders.push(holder)
    }
    const held = holder
    return async () => {
      // A lock broken as stale may be someone else's by now: remove only this one.
      const released = await this.#fs.lstat(file).then(
        async (stats) => stats.ino !== held.ino || await this.#fs.unlink(file).then(() => true, () => false),
        (error) => errorCode(error) === 'ENOENT')
      // A lock left in place must age until it is broken: its holder takes no other lock, which would renew its mtime.
      if (released && this.#holders.length < MAX_FREE_HOLDERS) this.#holders.push(held)
      else await this.#fs.unlink(held.file).catch(noop)
    }
  }

  /** Creates a holder file, saying which process holds the locks linked to it. */
  async #newHolder (): Promise<Holder> {
    const file = path.join(this.#dir, `.${hex()}.holder`)
    const handle = await this.#fs.open(file, LOCK_FLAGS, 0o600)
    let ino: number
    try {
      await handle.writeFile(`${PID} ${INCARNATION} - ${HOST}`)
      ino = (await handle.stat()).ino
    } catch (error) {
      await handle.close()
      await this.#fs.unlink(file).catch(noop)
      throw error
    }
    await handle.close()
    return { file, ino }
  }

  /**
   * Removes the lock file if its holder is gone; true when the lock may be
   * tried again at once. The file is renamed away and then checked to be the
   * one found stale: a fresh lock taken meanwhile is put back.
   */
  async #breakIfStale (file: string): Promise<boolean> {
    const found = await this.#readLock(file)
    if (found === undefined) return true
    const { stats, text } = found
    if (!staleLock(text, stats.mtimeMs)) return false
    const broken = `${file}.${hex()}.broken`
    try {
      await this.#fs.rename(file, broken)
    } catch (error) {
      if (errorCode(error) === 'ENOENT') return true
      throw error
    }
    const moved = await this.#readLock(broken)
    // One holder takes many locks, and inode numbers are reused at once on some file systems:
    // the holder's text and the time it took the lock tell locks apart.
    if (moved === undefined || moved.stats.ino !== stats.ino || moved.stats.mtimeMs !== stats.mtimeMs || moved.text !== text) await this.#fs.link(broken, file).catch(noop)
    await this.#fs.unlink(broken).catch(absentIsFine)
    return true
  }

  async #readLock (file: string): Promise<{ stats: Stats, text: string } | undefined> {
    let handle: FileArchiveHandle
    try {
      handle = await this.#fs.open(file, READ_FLAGS)
    } catch (error) {
      if (errorCode(error) === 'ENOENT') return undefined
      throw error
    }
    try {
      return { stats: await handle.stat(), text: await handle.readFile('utf8') }
    } finally {
      await handle.close()
    }
  }

  /** The key's value; `undefined` when absent; the inode of its file when it expired. */
  async #read (domainDir: string, key: string, file: string): Promise<string | number | undefined> {
    const kept = await this.#keptValue(file, file)
    if (kept !== undefined) return kept
    if (!await this.#checkDir(false)) return undefined
    const open = await this.#openDomain(domainDir, false)
    if (open === undefined) return undefined
    let found: KeyRead | undefined
    let remembered = false
    try {
      try {
        found = await this.#readKey(open, key)
        if (found?.value !== undefined && (open.stats.mode & NEW_MARK) !== 0) {
          // Found: its browser came back, so it is established from now on.
          await open.handle.chmod(0o700)
          this.#newDomains.delete(path.basename(domainDir))
        }
      } finally {
        await open.handle.close()
      }
      if (found === undefined) return undefined
      if (found.value === undefined) return found.stats.ino
      remembered = this.#remember(file, found.stats, found.value, found.handle)
      return found.value
    } finally {
      if (found !== undefined && !remembered) await found.handle.close()
    }
  }

  /**
   * The live value of a key, through the domain's handle; `undefined` when
   * absent or expired. A value in the read cache is checked as `get` checks it.
   */
  async #readIn (open: OpenDomain, key: string, file: string): Promise<string | undefined> {
    const at = path.join(open.inside, `${key}.json`)
    const kept = await this.#keptValue(file, at)
    if (kept !== undefined) return kept
    const found = await this.#readKey(open, key)
    await found?.handle.close()
    return found?.value
  }

  /**
   * The value kept for `file`, if the file it came from is still the key's,
   * unchanged and live; otherwise it is forgotten. A file replaced or removed
   * by any writer has a new inode, new times, or (held open) no name left.
   * `at` reaches the file when it is not held open.
   */
  async #keptValue (file: string, at: string): Promise<string | undefined> {
    const cached = this.#reads.get(file)
    if (cached === undefined) return undefined
    const stats = await (cached.handle === undefined ? this.#fs.lstat(at) : cached.handle.stat()).catch(noop)
    if (stats !== undefined && sameFile(stats, cached) && stats.mtimeMs > Date.now()) return cached.value
    this.#forget(file)
    return undefined
  }

  /**
   * A key file's stats and, unless it expired, its value, with the file still
   * open: the caller keeps it or closes it. `undefined` when there is no
   * trusted key file.
   */
  async #readKey (open: OpenDomain, key: string): Promise<KeyRead | undefined> {
    let handle: FileArchiveHandle
    try {
      handle = await this.#fs.open(path.join(open.inside, `${key}.json`), READ_FLAGS)
    } catch (error) {
      if (ABSENT.has(errorCode(error) as string)) return undefined
      throw error
    }
    let found: KeyRead | undefined
    try {
      const stats = await handle.stat()
      if (!trustedFile(stats)) return undefined
      found = { stats, handle, value: stats.mtimeMs <= Date.now() ? undefined : await handle.readFile('utf8') }
      return found
    } finally {
      if (found === undefined) await handle.close()
    }
  }

  /** Removes an expired key file, under the lock, if it is still the one found expired. */
  async #dropExpired (domain: string, domainDir: string, key: string, ino: number): Promise<void> {
    await this.#exclusive(domain, domainDir, false, async () => {
      const open = await this.#openDomain(domainDir, false)
      if (open === undefined) return
      try {
        const file = path.join(open.inside, `${key}.json`)
        const stats = await this.#fs.lstat(file)
        if (stats.ino !== ino || stats.mtimeMs > Date.now()) return
        await this.#fs.unlink(file)
        await this.#removeIfEmpty(domainDir, open)
      } finally {
        await open.handle.close()
      }
    }, undefined)
  }

  /**
   * Keeps a value read from or written to `file`, whose stats and open handle
   * are given; its callers, in the domain's queue, have forgotten what was
   * kept for `file` before. Whether it took the handle (to hold open); if
   * not, the caller closes it. The values kept longest make room, and the
   * files held open longest are closed first.
   */
  #remember (file: string, stats: FileStats, value: string, handle: FileArchiveHandle): boolean {
    if (this.#readCacheSize === 0 || stats.size > this.#readCacheMaxValueBytes || stats.size > this.#readCacheBytes) return false
    while (this.#reads.size >= this.#readCacheSize || this.#readBytes + stats.size > this.#readCacheBytes) {
      this.#forget(this.#reads.keys().next().value as string)
    }
    const holds = this.#readCacheOpenFiles > 0
    if (holds && this.#openReads.size >= this.#readCacheOpenFiles) this.#closeKept(this.#openReads.values().next().value as string)
    this.#reads.set(file, { value, ino: stats.ino, size: stats.size, mtimeMs: stats.mtimeMs, ctimeMs: stats.ctimeMs, handle: holds ? handle : undefined })
    this.#readBytes += stats.size
    if (holds) this.#openReads.add(file)
    return holds
  }

  #forget (file: string): void {
    const cached = this.#reads.get(file)
    if (cached === undefined) return
    this.#closeKept(file)
    this.#reads.delete(file)
    this.#readBytes -= cached.size
  }

  /** Closes the file a kept value holds open; the value stays, checked through its path from now on. */
  #closeKept (file: string): void {
    const cached = this.#reads.get(file) as CachedRead
    const handle = cached.handle
    if (handle === undefined) return
    cached.handle = undefined
    this.#openReads.delete(file)
    // A close that fails has nothing left to do: the descriptor is released either way.
    handle.close().catch(noop)
  }

  /**
   * Writes a temp file and renames it over the key. The value is then kept in
   * the read cache (of an established domain) with the stats of the file it
   * went to, read through the handle after the rename (which changes its
   * ctime), so no path is looked up again and no other writer's file can be
   * mistaken for it.
   */
  async #write (open: OpenDomain, key: string, file: string, value: string, mtime: number): Promise<void> {
    const temp = path.join(open.inside, `.${key}.${hex()}.tmp`)
    // EEXIST: the name was taken, so the file there is not ours to remove.
    const handle = await this.#fs.open(temp, WRITE_FLAGS, 0o600)
    this.#forget(file)
    let renamed = false
    let remembered = false
    try {
      await handle.writeFile(value)
      await handle.utimes(mtime, mtime)
      await this.#fs.rename(temp, path.join(open.inside, `${key}.json`))
      renamed = true
      // A new domain's first `get` must read through its directory, which clears the mark.
      if ((open.stats.mode & NEW_MARK) === 0) remembered = this.#remember(file, await handle.stat(), value, handle)
    } catch (error) {
      // After the rename the value is stored: only the cache missed it.
      if (renamed) return
      await this.#fs.unlink(temp).catch(noop)
      throw error
    } finally {
      if (!remembered) await handle.close()
    }
  }

  /** Removes a domain's directory if it is empty and still the directory that was opened. */
  async #removeIfEmpty (domainDir: string, open: OpenDomain): Promise<void> {
    const stats = await this.#fs.lstat(domainDir).catch(noop)
    if (stats === undefined || stats.ino !== open.stats.ino || stats.dev !== open.stats.dev) return
    await this.#fs.rmdir(domainDir).then(() => this.#removed(domainDir), noop)
  }

  #removed (domainDir: string): void {
    this.#domainCount = Math.max(0, this.#domainCount - 1)
    this.#newDomains.delete(path.basename(domainDir))
  }

  /**
   * Before a domain is created: removes the oldest new domains while there
   * are `maxNewSessions` of them or `maxSessions` domains in all; rejects
   * with `FST_SESSION_ARCHIVE_AT_CAPACITY` when only established ones fill
   * the archive.
   */
  async #makeRoom (looked = false): Promise<void> {
    let stored = await this.#storedDomains()
    for (const victim of this.#newDomains) {
      if (this.#newDomains.size < this.#maxNewSessions && stored < this.#maxSessions) return
      this.#newDomains.delete(victim)
      if (await this.#evict(victim)) stored--
    }
    if (stored < this.#maxSessions) return
    // The new domains may be other processes': look for some before refusing.
    if (looked || !await this.#findNewDomains()) throw new FST_SESSION_ARCHIVE_AT_CAPACITY()
    await this.#makeRoom(true)
  }

  /** Reads the dir until it finds a few new domains (the sticky bit); whether it found any. */
  async #findNewDomains (): Promise<boolean> {
    const dir = await this.#fs.opendir(this.#dir, { bufferSize: SWEEP_BATCH })
    let found = 0
    for await (const { name } of dir) {
      if (!DOMAIN.test(name)) continue
      const stats = await this.#fs.lstat(path.join(this.#dir, name)).catch(noop)
      if (stats === undefined || !trustedDir(stats) || (stats.mode & NEW_MARK) === 0) continue
      this.#newDomains.add(name)
      if (++found === SWEEP_BATCH) break
    }
    return found > 0
  }

  /**
   * How many domains are stored. Where the file system counts a directory's
   * subdirectories in its link count (ext4 below 65,000, XFS, tmpfs), that
   * is exact across processes; elsewhere (btrfs) it is what the last sweep
   * counted plus this process's changes since.
   */
  async #storedDomains (): Promise<number> {
    const { nlink } = await this.#fs.lstat(this.#dir)
    if (nlink >= 2) this.#domainCount = nlink - 2
    return this.#domainCount
  }

  /** Removes a new domain to make room, unless someone holds it or a `get` found it meanwhile. */
  async #evict (domain: string): Promise<boolean> {
    const domainDir = path.join(this.#dir, domain)
    const release = await this.#lock(domain, false)
    if (release === undefined) return false
    try {
      const open = await this.#openDomain(domainDir, false)
      if (open === undefined) return false
      try {
        if ((open.stats.mode & NEW_MARK) === 0) return false
        await this.#removeDomainDir(domainDir, open)
        return true
      } finally {
        await open.handle.close()
      }
    } finally {
      await release()
    }
  }

  /**
   * Renames the domain away, so that it is gone for every reader at once,
   * then removes it; if that fails, the domain is put back as it was.
   */
  async #removeDomainDir (domainDir: string, open: OpenDomain): Promise<void> {
    const removed = path.join(this.#dir, `.removed.${hex()}`)
    await this.#fs.rename(domainDir, removed)
    const stats = await this.#fs.lstat(removed)
    if (stats.ino !== open.stats.ino || stats.dev !== open.stats.dev) {
      // Not what was checked (swapped in between): leave it where it was.
      await this.#fs.rename(removed, domainDir)
      return
    }
    for (const name of await this.#fs.readdir(open.inside)) this.#forget(path.join(domainDir, name))
    try {
      await this.#fs.rm(removed, { recursive: true, force: true })
    } catch (error) {
      await this.#fs.rename(removed, domainDir).catch(noop)
      throw error
    }
    this.#removed(domainDir)
  }

  async #sweepAll (): Promise<number> {
    let removed = 0
    try {
      if (!await this.#checkDir(false)) return 0
      const dir = await this.#fs.opendir(this.#dir, { bufferSize: SWEEP_BATCH })
      const count = { domains: 0 }
      let batch: string[] = []
      const sweepBatch = async (): Promise<void> => {
        for (const swept of await Promise.all(batch.map((name) => this.#sweepEntry(name, count)))) removed += swept
        batch = []
        await nextTick()
      }
      for await (const { name } of dir) {
        batch.push(name)
        if (batch.length === SWEEP_BATCH) await sweepBatch()
      }
      await sweepBatch()
      this.#domainCount = count.domains
    } catch {
      // An unreadable dir: the next sweep tries again.
    }
    return removed
  }

  /** Sweeps one entry of the dir; resolves how many keys it removed, and never rejects. */
  async #sweepEntry (name: string, count: { domains: number }): Promise<number> {
    if (DOMAIN.test(name)) return await this.#sweepDomain(name, count).catch(() => 0)
    if (LOCK_FILE.test(name)) await this.#breakIfStale(path.join(this.#dir, name)).catch(noop)
    else if (HOLDER_FILE.test(name)) await this.#removeUnusedHolder(path.join(this.#dir, name)).catch(noop)
    else if (LEFT_OVER.test(name)) await this.#removeLeftOver(path.join(this.#dir, name)).catch(noop)
    return 0
  }

  /** Sweeps one domain; counts it in `count` if it stays, and learns whether it is new. */
  async #sweepDomain (domain: string, count: { domains: number }): Promise<number> {
    const domainDir = path.join(this.#dir, domain)
    return await serialise(domainDir, async () => {
      const open = await this.#openDomain(domainDir, false)
      if (open === undefined) return 0
      count.domains++
      if ((open.stats.mode & NEW_MARK) === 0) this.#newDomains.delete(domain)
      else this.#newDomains.add(domain)
      try {
        const { doomed, keys } = await this.#expiredIn(open)
        if (doomed.length === 0 && keys > 0) return 0
        // Someone else writing this domain now: it waits for the next sweep.
        const release = await this.#lock(domain, false)
        if (release === undefined) return 0
        try {
          const removed = await this.#removeExpired(domainDir, open)
          if (await this.#fs.lstat(domainDir).then(() => false, () => true)) count.domains--
          return removed
        } finally {
          await release()
        }
      } finally {
        await open.handle.close()
      }
    })
  }

  /** The expired key files and stale temp files of a domain, and how many live keys it has. */
  async #expiredIn (open: OpenDomain): Promise<{ doomed: string[], keys: number }> {
    const now = Date.now()
    const doomed: string[] = []
    let keys = 0
    for (const name of await this.#fs.readdir(open.inside)) {
      const isKey = KEY_FILE.test(name)
      if (!isKey && !TEMP_FILE.test(name)) continue
      const stats = await this.#fs.lstat(path.join(open.inside, name)).catch(absentIsFine)
      if (stats === undefined || !stats.isFile()) continue
      if (isKey ? stats.mtimeMs > now : stats.ctimeMs > now - STALE_TEMP_MS) keys += isKey ? 1 : 0
      else doomed.push(name)
    }
    return { doomed, keys }
  }

  /** Under the domain's lock: removes what is expired now, then the directory if that emptied it. */
  async #removeExpired (domainDir: string, open: OpenDomain): Promise<number> {
    let removed = 0
    for (const name of (await this.#expiredIn(open)).doomed) {
      await this.#fs.unlink(path.join(open.inside, name))
      this.#forget(path.join(domainDir, name))
      if (KEY_FILE.test(name)) removed++
    }
    await this.#removeIfEmpty(domainDir, open)
    return removed
  }

  /**
   * Removes a holder file that holds no lock (no second name) and whose
   * process is gone from this host, or, from another host, was last used an
   * hour ago. This process's own holders stay.
   */
  async #removeUnusedHolder (file: string): Promise<void> {
    const found = await this.#readLock(file)
    if (found === undefined || found.stats.nlink !== 1) return
    const [pid, incarnation, , host] = found.text.split(' ')
    const gone = host === HOST
      ? Number(pid) === PID ? incarnation !== INCARNATION : !alive(Number(pid))
      : found.stats.mtimeMs < Date.now() - STALE_HOLDER_MS
    if (gone) await this.#fs.unlink(file)
  }

  /** Removes what a removal that died left, once it is a minute old. */
  async #removeLeftOver (file: string): Promise<void> {
    const stats = await this.#fs.lstat(file)
    if (stats.ctimeMs > Date.now() - STALE_TEMP_MS) return
    await this.#fs.rm(file, { recursive: true, force: true })
  }

  readonly #fail = (error: unknown): never => {
    if (error instanceof FST_SESSION_ARCHIVE_DENIED || error instanceof FST_SESSION_ARCHIVE_AT_CAPACITY) throw error
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

interface KeyRead {
  readonly stats: Stats
  /** `undefined`: the key expired. */
  readonly value: string | undefined
  /** The key file, still open. */
  readonly handle: FileArchiveHandle
}

/** A key's expiry as its file's mtime, in seconds. */
function expiryOf (ttlMs: number | undefined): number {
  return (ttlMs === undefined ? NO_EXPIRY_MS : Math.min(Date.now() + ttlMs, NO_EXPIRY_MS)) / 1000
}
