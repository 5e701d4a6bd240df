import { createHash } from 'node:crypto'
import { createRequire } from 'node:module'
import { FST_SESSION_ARCHIVE_AT_CAPACITY, FST_SESSION_ARCHIVE_UNAVAILABLE, FST_SESSION_INVALID_OPTION } from '../errors.js'
import type { Archive } from './archive.js'
import { refuseUnknownOptions } from './archive-options.js'

/**
 * The part of a Redis client that `RedisArchive` uses, described by shape: an
 * ioredis 5 or 6 client fits, and so does an iovalkey one. It names nothing
 * from those packages, so an app that never uses Redis type-checks without them.
 */
export interface RedisClient {
  /** ioredis's connection state: `'wait'`, `'connecting'`, `'connect'`, `'ready'`, `'reconnecting'`, `'close'` or `'end'`. */
  readonly status: string
  /** True on a Redis Cluster client (ioredis's or iovalkey's `Cluster`): the archive then shards its keys so that each script stays on one slot. */
  readonly isCluster?: boolean
  hget (key: string, field: string): Promise<string | null>
  hmget (key: string, ...fields: string[]): Promise<Array<string | null>>
  hgetall (key: string): Promise<Record<string, string>>
  eval (script: string, numkeys: number, ...args: Array<string | number>): Promise<unknown>
  evalsha (sha: string, numkeys: number, ...args: Array<string | number>): Promise<unknown>
  ping (): Promise<string>
  on (event: 'ready' | 'error' | 'end', listener: (error: unknown) => void): unknown
  removeListener (event: 'ready' | 'error' | 'end', listener: (error: unknown) => void): unknown
}

/** A client the archive created itself, from `url`. */
interface OwnedClient extends RedisClient {
  connect (): Promise<void>
  quit (): Promise<unknown>
  disconnect (): void
}

/** Options of `RedisArchive`: a `url` (the archive creates and owns its client) or a `client` (yours, never closed by it). */
export type RedisArchiveOptions = (
  | {
    /**
     * The archive creates its own ioredis client for this URL and closes it on `app.close()`.
     * Needs the `ioredis` package (5 or 6).
     * @example 'redis://127.0.0.1:6379/0'
     * @example process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
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
     * Your ioredis (5 or 6) or iovalkey client, or their `Cluster` client for a Redis Cluster;
     * the archive never closes it. It may still be connecting: `app.ready()` waits for it (see
     * `readyTimeoutMs`). Give it a `commandTimeout` and `enableOfflineQueue: false` so that an
     * outage gives quick 503s rather than requests queued in memory.
     * @example new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { commandTimeout: 1000, enableOfflineQueue: false })
     * @example new Cluster([{ host: '10.0.0.1', port: 6379 }], { enableOfflineQueue: false, redisOptions: { commandTimeout: 1000 } })
     */
    client: RedisClient
    url?: never
    commandTimeoutMs?: never
    lazyConnect?: never
  }
) & {
  /**
   * Prefix of every key: a session lives in the hash `<prefix>{<id>}`, and the counts in the sorted sets
   * `<prefix>sessions` and `<prefix>new-sessions`. Instances sharing a prefix share the sessions and their limits.
   * On a Redis Cluster, each of 16 shards has its own hash tag after the prefix (`<prefix>{<tag>}{<id>}`,
   * `<prefix>{<tag>}sessions`...), and the prefix may hold no `{` or `}`.
   * @default 'fastify-sessions:'
   */
  prefix?: string
  /**
   * How long registration (`app.ready()`) waits for the client to be connected and to answer
   * PING (ms) before it fails with `FST_SESSION_ARCHIVE_UNAVAILABLE`. A client that gives up
   * (ends) fails at once, and so does the archive's own client at its first connection error.
   * Not used with `lazyConnect`.
   * @default 5000
   */
  readyTimeoutMs?: number
  /**
   * How many sessions are kept at most, new and established together, across
   * every instance sharing the prefix. Creating one beyond this first removes
   * the oldest new session; when every session is established, creating one
   * rejects with `FST_SESSION_ARCHIVE_AT_CAPACITY`. On a Redis Cluster, each
   * of the 16 shards keeps a sixteenth (rounded up).
   * @default 100_000
   */
  maxSessions?: number
  /**
   * How many new sessions (created, not yet found by a `get`) are kept at
   * most; creating one beyond this first removes the oldest new session. At
   * most `maxSessions`. On a Redis Cluster, each of the 16 shards keeps a
   * sixteenth (rounded up).
   * @default a tenth of maxSessions (at least 1)
   */
  maxNewSessions?: number
}

interface Script {
  readonly source: string
  readonly sha: string
}

// A creation drops up to this many hundreds of expired sessions from the indexes.
const PRUNE_BATCHES = 10

function script (source: string): Script {
  return { source, sha: createHash('sha1').update(source).digest('hex') }
}

// Layout. A session is the hash `<prefix>{<id>}`; a field holds
// `<expiresAt>:<value>`, expiresAt in ms since the epoch or 0 for none: Redis
// 7.0 hashes expire only as a whole, so each field carries its own expiry and
// the hash expires with its latest field. The field `:new` (never a key name
// the plugin uses) marks a session on probation. Two sorted sets count them:
// `<prefix>sessions` holds every id, scored by when its hash expires (+inf for
// never), and `<prefix>new-sessions` the new ids, scored by when they were
// created. Every write is one script, so the hash, its ttl and both indexes
// change together, whichever instance writes.
//
// Every script gets KEYS[1] the hash, KEYS[2] the index of all, KEYS[3] the
// index of new ones. Scripts that remove other sessions (evicting, pruning)
// name those hashes themselves from the prefix (ARGV[6]).
//
// On a Redis Cluster, where a script may touch one slot only, the sessions are
// split into SHARDS shards, each a whole archive of its own under the prefix
// `<prefix>{<tag>}` with a sixteenth of the limits: a session's hash
// `<prefix>{<tag>}{<id>}` (the first braces are its hash tag), its shard's
// indexes `<prefix>{<tag>}sessions` and `<prefix>{<tag>}new-sessions`, and
// every session a script removes, are all on the tag's slot.
const NEW_FIELD = ':new'

// Creating a session: ARGV[4] now, ARGV[5] id, ARGV[6] prefix, ARGV[7]
// maxSessions, ARGV[8] maxNewSessions. Returns 0 when the session exists, 1
// when it is created (STORE then marks it new), -1 when only established
// sessions fill maxSessions.
const CREATE = `
local now = tonumber(ARGV[4])
local function drop (id)
  redis.call('DEL', ARGV[6] .. '{' .. id .. '}')
  redis.call('ZREM', KEYS[2], id)
  redis.call('ZREM', KEYS[3], id)
end
local score = redis.call('ZSCORE', KEYS[2], ARGV[5])
if score and tonumber(score) > now then return 0 end
if score then drop(ARGV[5]) end
for _ = 1, ${PRUNE_BATCHES} do
  local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 100)
  for _, id in ipairs(expired) do drop(id) end
  if #expired < 100 then break end
end
local total, fresh = redis.call('ZCARD', KEYS[2]), redis.call('ZCARD', KEYS[3])
if total - fresh >= tonumber(ARGV[7]) then return -1 end
while fresh >= tonumber(ARGV[8]) or total >= tonumber(ARGV[7]) do
  drop(redis.call('ZRANGE', KEYS[3], 0, 0)[1])
  total, fresh = total - 1, fresh - 1
end
redis.call('ZADD', KEYS[3], now, ARGV[5])
return 1`

// Writing the field, once CREATE has said whether it created the session
// (created): ARGV[1] field, ARGV[2] stored text, ARGV[3] its expiry (ms,
// always in the future; 0 for none), ARGV[4] now, ARGV[5] id. Only the other
// fields' values are read, for their expiry.
const STORE = `
if created == 1 then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2], '${NEW_FIELD}', '1')
else
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
end
local latest, latestText, forever = tonumber(ARGV[3]), ARGV[3], ARGV[3] == '0'
for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
  if field ~= '${NEW_FIELD}' and field ~= ARGV[1] then
    local text = string.match(redis.call('HGET', KEYS[1], field), '^(%d+):')
    local expiresAt = tonumber(text)
    if expiresAt == 0 then
      forever = true
    elseif expiresAt <= tonumber(ARGV[4]) then
      redis.call('HDEL', KEYS[1], field)
    elseif expiresAt > latest then
      latest, latestText = expiresAt, text
    end
  end
end
if forever then
  redis.call('PERSIST', KEYS[1])
  redis.call('ZADD', KEYS[2], '+inf', ARGV[5])
else
  redis.call('PEXPIREAT', KEYS[1], latestText)
  redis.call('ZADD', KEYS[2], latestText, ARGV[5])
end
return 1`

const SET = script(`
local created = (function () ${CREATE} end)()
if created == -1 then return -1 end
${STORE}`)

// ARGV[9] '1' when a current value is expected, ARGV[10] that value.
const COMPARE_AND_SET = script(`
local current = false
local stored = redis.call('HGET', KEYS[1], ARGV[1])
if stored then
  local expiresAt, value = string.match(stored, '^(%d+):(.*)$')
  expiresAt = tonumber(expiresAt)
  if expiresAt == 0 or expiresAt > tonumber(ARGV[4]) then current = value end
end
if ARGV[9] == '1' then
  if current ~= ARGV[10] then return 0 end
elseif current then
  return 0
end
local created = (function () ${CREATE} end)()
if created == -1 then return -1 end
${STORE}`)

// The first get that finds a new session establishes it. ARGV[1] id.
const ESTABLISH = script(`
if redis.call('HDEL', KEYS[1], '${NEW_FIELD}') == 1 then redis.call('ZREM', KEYS[3], ARGV[1]) end
return 1`)

// ARGV[1] field, ARGV[2] id. A session left with no field of the plugin's ends.
const REMOVE = script(`
redis.call('HDEL', KEYS[1], ARGV[1])
local left = redis.call('HLEN', KEYS[1])
if left == 0 or (left == 1 and redis.call('HEXISTS', KEYS[1], '${NEW_FIELD}') == 1) then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[2])
  redis.call('ZREM', KEYS[3], ARGV[2])
end
return 1`)

// ARGV[1] id.
const REMOVE_DOMAIN = script(`
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
return 1`)

const AT_CAPACITY = -1

const SLOTS = 16384
const SHARDS = 16

/** Redis Cluster's hash slot of a hash tag: CRC16 (XMODEM) modulo 16384. */
function slotOf (tag: string): number {
  let crc = 0
  for (const byte of Buffer.from(tag)) {
    crc ^= byte << 8
    for (let bit = 0; bit < 8; bit++) crc = ((crc << 1) ^ (crc & 0x8000 ? 0x1021 : 0)) & 0xffff
  }
  return crc % SLOTS
}

/** The shard of a session: the sixteenth of the slots its id falls in. */
export function shardOf (domain: string): number {
  return Math.floor(slotOf(domain) * SHARDS / SLOTS)
}

/**
 * Each shard's hash tag: the first `<shard>-<n>` on a slot of the shard's own
 * sixteenth, so that the shards spread over the masters as the slots do.
 */
export const SHARD_TAGS: readonly string[] = Array.from({ length: SHARDS }, (_, shard) => {
  let n = 0
  while (shardOf(`${shard}-${n}`) !== shard) n++
  return `${shard}-${n}`
})

/** Where one shard's keys live: the prefix of its hashes and its two indexes. */
interface Shard {
  readonly prefix: string
  readonly all: string
  readonly new: string
}

function shard (prefix: string): Shard {
  return { prefix, all: `${prefix}sessions`, new: `${prefix}new-sessions` }
}

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
const DEFAULT_READY_TIMEOUT_MS = 5000
const DEFAULT_MAX_SESSIONS = 100_000

function createClient (url: string, commandTimeout: number): OwnedClient {
  let Client: new (url: string, options: Record<string, unknown>) => OwnedClient
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
    // Commands of requests served in one turn of the event loop go out in one write.
    enableAutoPipelining: true,
    maxRetriesPerRequest: 0,
    retryStrategy: (attempt: number) => Math.min(attempt * 100, 2000)
  })
  // Connection errors reach the requests as rejected commands (503s); the
  // event itself needs a listener, or ioredis reports each one on stderr.
  client.on('error', () => {})
  return client
}

function positiveInteger (option: string, value: unknown): number {
  if (!Number.isSafeInteger(value) || (value as number) < 1) throw new FST_SESSION_INVALID_OPTION(option, 'must be a positive integer')
  return value as number
}

function positiveMs (option: string, value: unknown): number {
  if (!Number.isSafeInteger(value) || (value as number) <= 0) {
    throw new FST_SESSION_INVALID_OPTION(option, 'must be a whole number of milliseconds greater than 0')
  }
  return value as number
}

/**
 * An archive in Redis, for many Fastify instances behind a load balancer.
 * Each session is one hash, `<prefix>{<id>}`, whose fields are the archive's
 * keys: one round trip per read (HMGET), one script per write.
 * `compareAndSet` is a script too, so concurrent saves of one session from
 * different instances merge instead of overwriting each other.
 *
 * Bounded, with probation: a session is new until a `get` finds it. Two
 * sorted sets under the prefix count the sessions (`<prefix>sessions`, by
 * expiry) and the new ones (`<prefix>new-sessions`, by creation); creating a
 * session beyond `maxNewSessions` or `maxSessions` removes the oldest new one
 * in the same script, and when established sessions alone fill `maxSessions`
 * it rejects with `FST_SESSION_ARCHIVE_AT_CAPACITY`. The counts are shared by
 * every instance on the prefix and exact at each creation, with two
 * exceptions: a creation drops at most 1,000 expired sessions from the
 * indexes (more expiring at once are dropped by the next creations), and a
 * hash removed behind the archive's back (`FLUSHDB`, a `maxmemory` eviction
 * policy, a manual `DEL`) counts until its expiry.
 *
 * What it costs: a read of an established session is one HMGET; the first
 * read of a new one adds a small script that establishes it. A write to an
 * existing session adds a ZSCORE and a ZADD to the write (O(log n)); a
 * creation adds a ZRANGEBYSCORE for expired sessions, two ZCARDs, a ZADD and,
 * when full, a DEL and two ZREMs per session it removes. The indexes hold
 * each id twice at most (about 100 bytes per session).
 *
 * Redis Cluster: pass a `Cluster` client (`isCluster`). The sessions are
 * then split into 16 shards by id, each with a hash tag and indexes of its
 * own, so that every script touches one slot, and the shards' slots spread
 * over the masters as the slots do. Each shard keeps a sixteenth of
 * `maxSessions` and of `maxNewSessions` (rounded up): a creation removes the
 * oldest new session of its own shard, and is refused when established ones
 * fill its shard. Ids are random, so the shards fill alike, but not exactly:
 * the first refusal can come before the total reaches `maxSessions` (with
 * the default 100,000, about 2% before; the fewer sessions, the more). Reads
 * and writes cost what they cost on a single Redis: one HMGET, one script.
 *
 * @example
 * ```ts
 * const archive = new RedisArchive({ url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', maxSessions: 500_000 })
 * app.register(fastifySessions, { secret, mode: 'archive', archive })
 * ```
 *
 * @example
 * ```ts
 * // A client of your own (ioredis 5 or 6, or iovalkey), still connecting: app.ready() waits for it.
 * const client = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { commandTimeout: 1000, enableOfflineQueue: false })
 * app.register(fastifySessions, { secret, mode: 'archive', archive: new RedisArchive({ client }) })
 * app.addHook('onClose', () => client.quit())
 * ```
 *
 * @example
 * ```ts
 * // A Redis Cluster, through an ioredis (or iovalkey) Cluster client.
 * const cluster = new Cluster([{ host: '10.0.0.1', port: 6379 }], { enableOfflineQueue: false, redisOptions: { commandTimeout: 1000 } })
 * app.register(fastifySessions, { secret, mode: 'archive', archive: new RedisArchive({ client: cluster, prefix: 'app:' }) })
 * app.addHook('onClose', () => cluster.quit())
 * ```
 */
export class RedisArchive implements Archive {
  readonly #client: RedisClient
  readonly #owned: OwnedClient | undefined
  /** One shard on a single Redis; SHARDS on a Cluster. */
  readonly #shards: readonly Shard[]
  readonly #maxSessions: number
  readonly #maxNewSessions: number
  readonly #lazy: boolean
  readonly #readyTimeoutMs: number

  constructor (options: RedisArchiveOptions) {
    refuseUnknownOptions('RedisArchive', options, ['url', 'client', 'commandTimeoutMs', 'lazyConnect', 'readyTimeoutMs', 'prefix', 'maxSessions', 'maxNewSessions'])
    const { prefix = 'fastify-sessions:', readyTimeoutMs = DEFAULT_READY_TIMEOUT_MS } = options
    if (typeof prefix !== 'string') throw new FST_SESSION_INVALID_OPTION('prefix', 'must be a string')
    const maxSessions = positiveInteger('maxSessions', options.maxSessions ?? DEFAULT_MAX_SESSIONS)
    const maxNewSessions = positiveInteger('maxNewSessions', options.maxNewSessions ?? Math.max(1, Math.floor(maxSessions / 10)))
    if (maxNewSessions > maxSessions) throw new FST_SESSION_INVALID_OPTION('maxNewSessions', 'must not be more than maxSessions')
    this.#readyTimeoutMs = positiveMs('readyTimeoutMs', readyTimeoutMs)
    if (options.client?.isCluster === true) {
      if (/[{}]/.test(prefix)) throw new FST_SESSION_INVALID_OPTION('prefix', 'must hold no { or } on a Redis Cluster: the archive puts its own hash tags after it')
      this.#shards = SHARD_TAGS.map((tag) => shard(`${prefix}{${tag}}`))
      this.#maxSessions = Math.ceil(maxSessions / SHARDS)
      this.#maxNewSessions = Math.ceil(maxNewSessions / SHARDS)
    } else {
      this.#shards = [shard(prefix)]
      this.#maxSessions = maxSessions
      this.#maxNewSessions = maxNewSessions
    }
    if (options.client !== undefined) {
      this.#client = options.client
      this.#owned = undefined
      this.#lazy = false
      return
    }
    if (typeof options.url !== 'string' || options.url === '') {
      throw new FST_SESSION_INVALID_OPTION('url', 'must be a redis:// URL, or pass your own client as `client`')
    }
    const timeout = positiveMs('commandTimeoutMs', options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS)
    this.#owned = createClient(options.url, timeout)
    this.#client = this.#owned
    this.#lazy = options.lazyConnect ?? false
  }

  #shard (domain: string): Shard {
    const shards = this.#shards
    return shards.length === 1 ? shards[0] as Shard : shards[shardOf(domain)] as Shard
  }

  #key (domain: string, shard = this.#shard(domain)): string {
    return `${shard.prefix}{${domain}}`
  }

  /** Runs a script on the session's hash and its shard's indexes; loads it again when Redis has forgotten it. */
  async #run (code: Script, domain: string, args: Array<string | number>, shard = this.#shard(domain)): Promise<unknown> {
    const key = this.#key(domain, shard)
    try {
      return await this.#client.evalsha(code.sha, 3, key, shard.all, shard.new, ...args)
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw unavailable(error)
    }
    return this.#guard(() => this.#client.eval(code.source, 3, key, shard.all, shard.new, ...args))
  }

  /** Runs one client call, turning whatever it throws into `FST_SESSION_ARCHIVE_UNAVAILABLE`. */
  async #guard<T> (call: () => Promise<T>): Promise<T> {
    try {
      return await call()
    } catch (error) {
      throw unavailable(error)
    }
  }

  /** One round trip (HMGET); the first get that finds a new session adds one script that establishes it. */
  async get (domain: string, key: string): Promise<string | undefined> {
    let fields: Array<string | null>
    try {
      fields = await this.#client.hmget(this.#key(domain), key, NEW_FIELD)
    } catch (error) {
      throw unavailable(error)
    }
    const [stored = null, probation = null] = fields
    const value = live(stored, Date.now())
    if (value !== undefined && probation !== null) await this.#run(ESTABLISH, domain, [domain])
    return value
  }

  async set (domain: string, key: string, value: string, ttlMs?: number): Promise<void> {
    const now = Date.now()
    const expiresAt = expiry(ttlMs, now)
    const shard = this.#shard(domain)
    const result = await this.#run(SET, domain, [key, `${expiresAt}:${value}`, expiresAt, now, ...this.#limits(domain, shard)], shard)
    if (result === AT_CAPACITY) throw new FST_SESSION_ARCHIVE_AT_CAPACITY()
  }

  async compareAndSet (domain: string, key: string, expected: string | undefined, value: string, ttlMs?: number): Promise<boolean> {
    const now = Date.now()
    const expiresAt = expiry(ttlMs, now)
    const shard = this.#shard(domain)
    const args = [key, `${expiresAt}:${value}`, expiresAt, now, ...this.#limits(domain, shard), expected === undefined ? '0' : '1', expected ?? '']
    const result = await this.#run(COMPARE_AND_SET, domain, args, shard)
    if (result === AT_CAPACITY) throw new FST_SESSION_ARCHIVE_AT_CAPACITY()
    return result === 1
  }

  #limits (domain: string, shard: Shard): Array<string | number> {
    return [domain, shard.prefix, this.#maxSessions, this.#maxNewSessions]
  }

  async has (domain: string, key: string): Promise<boolean> {
    return live(await this.#guard(() => this.#client.hget(this.#key(domain), key)), Date.now()) !== undefined
  }

  async remove (domain: string, key: string): Promise<void> {
    await this.#run(REMOVE, domain, [key, domain])
  }

  async hasDomain (domain: string): Promise<boolean> {
    const now = Date.now()
    const fields = await this.#guard(() => this.#client.hgetall(this.#key(domain)))
    return Object.entries(fields).some(([field, stored]) => field !== NEW_FIELD && live(stored, now) !== undefined)
  }

  async removeDomain (domain: string): Promise<void> {
    await this.#run(REMOVE_DOMAIN, domain, [domain])
  }

  /**
   * Connects the client it created (in the background with `lazyConnect`),
   * waits for a client passed in that is still connecting, and checks that
   * Redis answers: at most `readyTimeoutMs`.
   */
  async ready (): Promise<void> {
    const owned = this.#owned
    if (owned?.status === 'wait') {
      // Its failures reach the wait below as error events.
      owned.connect().catch(() => {})
      if (this.#lazy) return
    }
    try {
      await answering(this.#client, this.#readyTimeoutMs, owned !== undefined)
    } catch (error) {
      owned?.disconnect()
      throw error
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

const URL_HINT = '; start it, check the URL, or pass lazyConnect: true to start without it'
const CLIENT_HINT = '; start it, or check the options of the client you passed in (host, port, password)'

/**
 * Resolves once `client` is ready and answers PING. Rejects when it ends,
 * when `failFast` and it reports a connection error, or after `timeoutMs`,
 * with the archive error that says why. A client still in `'wait'` (created
 * with `lazyConnect` and not connected) is sent the PING at once: ioredis
 * then connects it, or refuses when it queues no commands.
 */
async function answering (client: RedisClient, timeoutMs: number, failFast: boolean): Promise<void> {
  const hint = failFast ? URL_HINT : CLIENT_HINT
  await new Promise<void>((resolve, reject) => {
    let why: unknown
    const finish = (failure?: Error): void => {
      clearTimeout(timer)
      client.removeListener('ready', ping)
      client.removeListener('error', onError)
      client.removeListener('end', onEnd)
      if (failure === undefined) resolve()
      else reject(failure)
    }
    const ping = (): void => {
      client.ping().then(() => finish(), (error: unknown) => finish(unavailable(error, hint)))
    }
    const onError = (error: unknown): void => {
      why = error
      if (failFast) finish(unavailable(error, hint))
    }
    const onEnd = (): void => finish(why === undefined ? closed(hint) : unavailable(why, hint))
    const timer = setTimeout(() => finish(notReady(timeoutMs, why, hint)), timeoutMs)
    client.on('error', onError)
    client.on('end', onEnd)
    if (client.status === 'end') onEnd()
    else if (client.status === 'ready' || client.status === 'wait') ping()
    else client.on('ready', ping)
  })
}

/** Only names made of letters are kept: anything else may be text chosen by someone else. */
function plainName (name: unknown): string {
  return typeof name === 'string' && /^[A-Za-z]{1,40}$/.test(name) ? name : 'Error'
}

interface Described {
  readonly problem: string
  readonly cause: { readonly name: string, readonly code?: string }
}

/**
 * A client error told in words, with a cause that keeps only its name and
 * code. ioredis errors carry the command (`command.name`, `command.args`: the
 * session id and the whole session text) and Redis's own message, which may
 * quote keys or values; none of that may reach a 503 body or a log line.
 */
function describe (error: unknown): Described {
  const name = plainName((error as { name?: unknown } | null)?.name)
  const message = error instanceof Error ? error.message : ''
  const systemCode = (error as { code?: unknown } | null)?.code
  if (name === 'ReplyError') {
    // A Redis error reply starts with its class in capitals: OOM, READONLY, NOPERM, WRONGTYPE...
    const code = /^[A-Z][A-Z_]{1,31}(?= |$)/.exec(message)?.[0]
    return code === undefined
      ? { problem: 'Redis refused the command (an error reply)', cause: { name } }
      : { problem: `Redis refused the command (${code})`, cause: { name, code } }
  }
  if (typeof systemCode === 'string' && /^E[A-Z]{2,31}$/.test(systemCode)) {
    return { problem: `Redis cannot be reached (${systemCode})`, cause: { name, code: systemCode } }
  }
  const problem = message === 'Command timed out'
    ? 'Redis did not answer in time'
    : message === 'Connection is closed.'
      ? 'the connection to Redis is closed'
      : message.startsWith('Stream isn\'t writeable')
        ? 'the client is not connected to Redis, and queues no commands while it is not'
        : name === 'MaxRetriesPerRequestError' ? 'the client gave up reaching Redis' : 'the Redis client failed'
  return { problem, cause: { name } }
}

function failure (problem: string, cause: Described['cause']): Error {
  const error = new FST_SESSION_ARCHIVE_UNAVAILABLE(problem)
  error.cause = cause
  return error
}

function unavailable (error: unknown, hint = ''): Error {
  const { problem, cause } = describe(error)
  return failure(problem + hint, cause)
}

function closed (hint: string): Error {
  return failure(`the connection to Redis is closed${hint}`, { name: 'Error' })
}

function notReady (timeoutMs: number, why: unknown, hint: string): Error {
  if (why === undefined) return failure(`the client was not ready within ${timeoutMs} ms${hint}, or raise readyTimeoutMs`, { name: 'Error' })
  const { problem, cause } = describe(why)
  return failure(`the client was not ready within ${timeoutMs} ms (${problem})${hint}, or raise readyTimeoutMs`, cause)
}
