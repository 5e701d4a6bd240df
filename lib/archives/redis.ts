import { createHash } from 'node:crypto'
import { createRequire } from 'node:module'
import { FST_SESSION_ARCHIVE_UNAVAILABLE, FST_SESSION_INVALID_OPTION } from '../errors.js'
import type { Archive } from './archive.js'

/**
 * The part of a Redis client that `RedisArchive` uses, described by shape: an
 * ioredis 5 or 6 client fits, and so does an iovalkey one. It names nothing
 * from those packages, so an app that never uses Redis type-checks without them.
 */
export interface RedisClient {
  /** ioredis's connection state: `'wait'`, `'connecting'`, `'connect'`, `'ready'`, `'reconnecting'`, `'close'` or `'end'`. */
  readonly status: string
  hget (key: string, field: string): Promise<string | null>
  hvals (key: string): Promise<string[]>
  hdel (key: string, ...fields: string[]): Promise<number>
  del (...keys: string[]): Promise<number>
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
     * Your ioredis (5 or 6) or iovalkey client; the archive never closes it. It may still be
     * connecting: `app.ready()` waits for it (see `readyTimeoutMs`). Give it a `commandTimeout`
     * and `enableOfflineQueue: false` so that an outage gives quick 503s rather than requests
     * queued in memory.
     * @example new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { commandTimeout: 1000, enableOfflineQueue: false })
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
  /**
   * How long registration (`app.ready()`) waits for the client to be connected and to answer
   * PING (ms) before it fails with `FST_SESSION_ARCHIVE_UNAVAILABLE`. A client that gives up
   * (ends) fails at once, and so does the archive's own client at its first connection error.
   * Not used with `lazyConnect`.
   * @default 5000
   */
  readyTimeoutMs?: number
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
const DEFAULT_READY_TIMEOUT_MS = 5000

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
    maxRetriesPerRequest: 0,
    retryStrategy: (attempt: number) => Math.min(attempt * 100, 2000)
  })
  // Connection errors reach the requests as rejected commands (503s); the
  // event itself needs a listener, or ioredis reports each one on stderr.
  client.on('error', () => {})
  return client
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
 * keys: one round trip per read, one script per write. `compareAndSet` is a
 * script too, so concurrent saves of one session from different instances
 * merge instead of overwriting each other.
 *
 * @example
 * ```ts
 * const archive = new RedisArchive({ url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' })
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
 */
export class RedisArchive implements Archive {
  readonly #client: RedisClient
  readonly #owned: OwnedClient | undefined
  readonly #prefix: string
  readonly #lazy: boolean
  readonly #readyTimeoutMs: number

  constructor (options: RedisArchiveOptions) {
    const { prefix = 'fastify-sessions:', readyTimeoutMs = DEFAULT_READY_TIMEOUT_MS } = options
    if (typeof prefix !== 'string') throw new FST_SESSION_INVALID_OPTION('prefix', 'must be a string')
    this.#prefix = prefix
    this.#readyTimeoutMs = positiveMs('readyTimeoutMs', readyTimeoutMs)
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

  /** Runs one client call, turning whatever it throws into `FST_SESSION_ARCHIVE_UNAVAILABLE`. */
  async #guard<T> (call: () => Promise<T>): Promise<T> {
    try {
      return await call()
    } catch (error) {
      throw unavailable(error)
    }
  }

  async get (domain: string, key: string): Promise<string | undefined> {
    return live(await this.#guard(() => this.#client.hget(this.#key(domain), key)), Date.now())
  }

  async set (domain: string, key: string, value: string, ttlMs?: number): Promise<void> {
    const now = Date.now()
    const expiresAt = expiry(ttlMs, now)
    await this.#guard(() => this.#run(SET, domain, [key, `${expiresAt}:${value}`, expiresAt, now]))
  }

  async compareAndSet (domain: string, key: string, expected: string | undefined, value: string, ttlMs?: number): Promise<boolean> {
    const now = Date.now()
    const expiresAt = expiry(ttlMs, now)
    const args = [key, `${expiresAt}:${value}`, expiresAt, now, expected === undefined ? '0' : '1', expected ?? '']
    return await this.#guard(() => this.#run(COMPARE_AND_SET, domain, args)) === 1
  }

  async has (domain: string, key: string): Promise<boolean> {
    return await this.get(domain, key) !== undefined
  }

  async remove (domain: string, key: string): Promise<void> {
    await this.#guard(() => this.#client.hdel(this.#key(domain), key))
  }

  async hasDomain (domain: string): Promise<boolean> {
    const now = Date.now()
    return (await this.#guard(() => this.#client.hvals(this.#key(domain)))).some((stored) => live(stored, now) !== undefined)
  }

  async removeDomain (domain: string): Promise<void> {
    await this.#guard(() => this.#client.del(this.#key(domain)))
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
