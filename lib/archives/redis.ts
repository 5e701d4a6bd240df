import { createHash } from 'node:crypto'
import { createRequire } from 'node:module'
import type { Redis, RedisOptions } from 'ioredis'
import { FST_SESSION_ARCHIVE_UNAVAILABLE, FST_SESSION_INVALID_OPTION } from '../errors.js'
import type { Archive } from './archive.js'

/** The commands `RedisArchive` uses: ioredis's client, and clients compatible with it (iovalkey). */
export type RedisClient = Pick<Redis, 'hget' | 'hvals' | 'hdel' | 'del' | 'eval' | 'evalsha' | 'ping' | 'quit'>

/** Options of `RedisArchive`: a `url` (the archive creates and owns its client) or a `client` (yours, never closed by it). */
export type RedisArchiveOptions = (
  | {
    /**
     * The archive creates its own ioredis client for this URL and closes it on `app.close()`.
     * @example 'redis://127.0.0.1:6379/0'
     */
    url: string
    client?: never
    /**
     * How long a command may take before the request gets a 503 (ms). Applies to the client the archive creates.
     * @default 1000
     */
    commandTimeoutMs?: number
    /**
     * Connect in the background instead of at registration: the app starts even while Redis is down,
     * and session routes answer 503 until it is reachable.
     * @default false
     */
    lazyConnect?: boolean
  }
  | {
    /**
     * Your ioredis (or compatible) client; the archive never closes it. Give it a
     * `commandTimeout` and `enableOfflineQueue: false` so that an outage gives
     * quick 503s rather than requests queued in memory.
     */
    client: RedisClient
    url?: never
    commandTimeoutMs?: never
    lazyConnect?: never
  }
) & {
  /**
   * Prefix of every key; a session lives in the hash `<prefix>{<id>}`, whose hash tag keeps it on one Cluster slot.
   * @default 'fastify-sessions:'
   */
  prefix?: string
}

interface Script {
  readonly source: string
  readonly sha: string
}

function script (source: string): Script {
  return { source, sha: createHash('sha1').update(source).digest('hex') }
}

// A field holds `<expiresAt>:<value>`, expiresAt in ms since the epoch or 0
// for none: Redis 7.0 hashes expire only as a whole, so each field carries
// its own expiry and the hash expires with its latest field. Writing a field
// and setting the hash's expiry are one script: no session key ever exists
// without its ttl.
//
// Shared tail: ARGV[1] field, ARGV[2] stored text, ARGV[3] its expiry, ARGV[4] now.
const STORE = `
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local latest, latestText = 0, '0'
local fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields, 2 do
  local text = string.match(fields[i + 1], '^(%d+):')
  local expiresAt = tonumber(text)
  if expiresAt == 0 then
    redis.call('PERSIST', KEYS[1])
    return 1
  elseif expiresAt <= tonumber(ARGV[4]) then
    redis.call('HDEL', KEYS[1], fields[i])
  elseif expiresAt > latest then
    latest, latestText = expiresAt, text
  end
end
redis.call('PEXPIREAT', KEYS[1], latestText)
return 1`

const SET = script(STORE)

// ARGV[5] '1' when a current value is expected, ARGV[6] that value.
const COMPARE_AND_SET = script(`
local current = false
local stored = redis.call('HGET', KEYS[1], ARGV[1])
if stored then
  local expiresAt, value = string.match(stored, '^(%d+):(.*)$')
  expiresAt = tonumber(expiresAt)
  if expiresAt == 0 or expiresAt > tonumber(ARGV[4]) then current = value end
end
if ARGV[5] == '1' then
  if current ~= ARGV[6] then return 0 end
elseif current then
  return 0
end
${STORE}`)

/** The value of a stored field, or undefined when it has expired. */
function live (stored: string | null, now: number): string | undefined {
  if (stored === null) return undefined
  const colon = stored.indexOf(':')
  const expiresAt = Number(stored.slice(0, colon))
  return expiresAt === 0 || expiresAt > now ? stored.slice(colon + 1) : undefined
}

function expiry (ttlMs: number | undefined, now: number): number {
  return ttlMs === undefined ? 0 : now + Math.max(1, Math.ceil(ttlMs))
}

const DEFAULT_COMMAND_TIMEOUT_MS = 1000

function createClient (url: string, commandTimeout: number): Redis {
  let Client: new (url: string, options: RedisOptions) => Redis
  try {
    Client = (createRequire(import.meta.url)('ioredis') as { Redis: typeof Client }).Redis
  /* c8 ignore next 3: reached only where ioredis is not installed; test/redis-optional.test.ts runs it in such a place */
  } catch {
    throw new FST_SESSION_INVALID_OPTION('url', 'needs the ioredis package: npm install ioredis')
  }
  const client = new Client(url, {
    lazyConnect: true,
    commandTimeout,
    connectTimeout: commandTimeout,
    // Fail at once while disconnected instead of queueing commands in memory.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: (attempt: number) => Math.min(attempt * 100, 2000)
  })
  // Connection errors reach the requests as rejected commands (503s); the
  // event itself needs a listener, or ioredis reports each one on stderr.
  client.on('error', () => {})
  return client
}

/**
 * An archive in Redis, for many Fastify instances behind a load balancer.
 * Each session is one hash, `<prefix>{<id>}`, whose fields are the archive's
 * keys: one round trip per read, one script per write. `compareAndSet` is a
 * script too, so concurrent saves of one session from different instances
 * merge instead of overwriting each other.
 *
 * @example
 * ```ts
 * app.register(fastifySessions, { secret, mode: 'archive', archive: new RedisArchive({ url: process.env.REDIS_URL }) })
 * ```
 */
export class RedisArchive implements Archive {
  readonly #client: RedisClient
  readonly #owned: Redis | undefined
  readonly #prefix: string
  readonly #lazy: boolean

  constructor (options: RedisArchiveOptions) {
    const { prefix = 'fastify-sessions:' } = options
    if (typeof prefix !== 'string') throw new FST_SESSION_INVALID_OPTION('prefix', 'must be a string')
    this.#prefix = prefix
    if (options.client !== undefined) {
      this.#client = options.client
      this.#owned = undefined
      this.#lazy = false
      return
    }
    if (typeof options.url !== 'string' || options.url === '') {
      throw new FST_SESSION_INVALID_OPTION('url', 'must be a redis:// URL, or pass your own client as `client`')
    }
    const timeout = options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS
    if (!Number.isSafeInteger(timeout) || timeout <= 0) {
      throw new FST_SESSION_INVALID_OPTION('commandTimeoutMs', 'must be a whole number of milliseconds greater than 0')
    }
    this.#owned = createClient(options.url, timeout)
    this.#client = this.#owned
    this.#lazy = options.lazyConnect ?? false
  }

  #key (domain: string): string {
    return `${this.#prefix}{${domain}}`
  }

  async #run (code: Script, domain: string, args: Array<string | number>): Promise<unknown> {
    try {
      return await this.#client.evalsha(code.sha, 1, this.#key(domain), ...args)
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error
      return this.#client.eval(code.source, 1, this.#key(domain), ...args)
    }
  }

  async get (domain: string, key: string): Promise<string | undefined> {
    return live(await this.#client.hget(this.#key(domain), key), Date.now())
  }

  async set (domain: string, key: string, value: string, ttlMs?: number): Promise<void> {
    const now = Date.now()
    const expiresAt = expiry(ttlMs, now)
    await this.#run(SET, domain, [key, `${expiresAt}:${value}`, expiresAt, now])
  }

  async compareAndSet (domain: string, key: string, expected: string | undefined, value: string, ttlMs?: number): Promise<boolean> {
    const now = Date.now()
    const expiresAt = expiry(ttlMs, now)
    const args = [key, `${expiresAt}:${value}`, expiresAt, now, expected === undefined ? '0' : '1', expected ?? '']
    return await this.#run(COMPARE_AND_SET, domain, args) === 1
  }

  async has (domain: string, key: string): Promise<boolean> {
    return await this.get(domain, key) !== undefined
  }

  async remove (domain: string, key: string): Promise<void> {
    await this.#client.hdel(this.#key(domain), key)
  }

  async hasDomain (domain: string): Promise<boolean> {
    const now = Date.now()
    return (await this.#client.hvals(this.#key(domain))).some((stored) => live(stored, now) !== undefined)
  }

  async removeDomain (domain: string): Promise<void> {
    await this.#client.del(this.#key(domain))
  }

  /** Connects the client it created (in the background with `lazyConnect`) and checks that Redis answers. */
  async ready (): Promise<void> {
    const owned = this.#owned
    if (owned?.status === 'wait') {
      if (this.#lazy) {
        // Failures surface as 503s on session routes while ioredis keeps retrying.
        owned.connect().catch(() => {})
        return
      }
      try {
        await owned.connect()
      } catch (error) {
        owned.disconnect()
        throw unreachable(error)
      }
    }
    try {
      await this.#client.ping()
    } catch (error) {
      throw unreachable(error)
    }
  }

  /** Closes the client it created; a client passed in stays open. */
  async close (): Promise<void> {
    const owned = this.#owned
    if (owned === undefined || owned.status === 'end') return
    try {
      await owned.quit()
    } catch {
      owned.disconnect()
    }
  }
}

function unreachable (error: unknown): Error {
  const failure = new FST_SESSION_ARCHIVE_UNAVAILABLE(
    `Redis did not answer (${String(error)}); start it, check the URL, or pass lazyConnect: true to start without it`)
  failure.cause = error
  return failure
}
