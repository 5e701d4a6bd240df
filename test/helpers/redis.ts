import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createServer } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { Cluster, Redis, type ClusterNode } from 'ioredis'
import type { Test } from 'tap'

export const REDIS_URL = 'redis://127.0.0.1:6379'
const HOW_TO_RUN = 'start one with: redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no'

async function answers (url: string): Promise<boolean> {
  const client = new Redis(url, { lazyConnect: true, connectTimeout: 500, maxRetriesPerRequest: 0, retryStrategy: () => null })
  client.on('error', () => {}) // a refused connection is the answer "no"
  try {
    await client.connect()
    return await client.ping() === 'PONG'
  } catch {
    return false
  } finally {
    client.disconnect()
  }
}

/**
 * The Redis on 127.0.0.1:6379, with a client whose keys under a prefix of
 * this test's own are deleted when it ends. Without Redis the test file is
 * skipped with one line saying how to run it, except under CI, where it fails.
 */
export async function useRedis (t: Test): Promise<{ client: Redis, prefix: string } | undefined> {
  if (!await answers(REDIS_URL)) {
    if (process.env['CI'] === 'true') t.fail(`Redis is required under CI: nothing answers at ${REDIS_URL}`)
    else t.plan(0, `no Redis at ${REDIS_URL}; ${HOW_TO_RUN}`)
    return undefined
  }
  const client = new Redis(REDIS_URL)
  const prefix = `fastify-sessions-test:${randomBytes(6).toString('hex')}:`
  t.teardown(async () => {
    const keys = await client.keys(`${prefix}*`)
    if (keys.length > 0) await client.del(...keys)
    await client.quit()
  })
  return { client, prefix }
}

async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

/**
 * A redis-server of the test's own on a spare port, to stop, pause and start
 * again; killed when the test ends. `config` adds command-line settings
 * (e.g. `['--maxmemory', '1']`).
 */
export class SpareRedis {
  readonly port: number
  readonly #config: string[]
  #process: ChildProcess | undefined

  private constructor (port: number, config: string[]) {
    this.port = port
    this.#config = config
  }

  static async create (t: Test, config: string[] = []): Promise<SpareRedis> {
    const spare = new SpareRedis(await freePort(), config)
    t.teardown(() => spare.stop())
    return spare
  }

  get url (): string {
    return `redis://127.0.0.1:${this.port}`
  }

  async start (): Promise<void> {
    this.#process = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...this.#config], { stdio: 'ignore' })
    for (let attempt = 0; attempt < 100; attempt++) {
      if (await answers(this.url)) return
      await sleep(50)
    }
    throw new Error(`redis-server did not start on port ${this.port}`)
  }

  /** Freezes the server (SIGSTOP): connections stay open and nothing answers, until `resume()`. */
  pause (): void {
    this.#process?.kill('SIGSTOP')
  }

  resume (): void {
    this.#process?.kill('SIGCONT')
  }

  async stop (): Promise<void> {
    const child = this.#process
    if (child === undefined || child.exitCode !== null) return
    const exited = new Promise((resolve) => child.once('exit', resolve))
    child.kill('SIGKILL')
    await exited
    this.#process = undefined
  }
}

/** Whether a `redis-server` binary is on the PATH, for tests that start their own. */
export function hasRedisServer (): boolean {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).error === undefined
}

interface StartedCluster {
  nodes: ClusterNode[]
  stop: () => Promise<void>
}

/**
 * A Redis Cluster of the test's own, three masters on spare ports (started by
 * `redis-cluster.js`, as the benchmarks start theirs), killed and its
 * files removed when the test ends. `connect()` gives another Cluster client,
 * disconnected then too. Without `redis-server` and `redis-cli` on the PATH
 * the test file is skipped with one line saying so, except under CI, where it fails.
 */
export async function useRedisCluster (t: Test): Promise<{ client: Cluster, connect: () => Cluster, prefix: string } | undefined> {
  if (!hasRedisServer() || spawnSync('redis-cli', ['--version'], { stdio: 'ignore' }).error !== undefined) {
    if (process.env['CI'] === 'true') t.fail('the Redis Cluster tests need redis-server and redis-cli on the PATH under CI')
    else t.plan(0, 'no redis-server and redis-cli on the PATH to start a Redis Cluster with; install Redis 7 to run these tests')
    return undefined
  }
  const { start } = await import(String(new URL('./redis-cluster.js', import.meta.url))) as { start: () => Promise<StartedCluster> }
  const cluster = await start()
  const clients: Cluster[] = []
  t.teardown(async () => {
    for (const client of clients) client.disconnect()
    await cluster.stop()
  })
  const connect = (): Cluster => {
    const client = new Cluster(cluster.nodes)
    client.on('error', () => {}) // a test that needs an error asserts it on the command
    clients.push(client)
    return client
  }
  const client = connect()
  await client.ping()
  return { client, connect, prefix: `fastify-sessions-test:${randomBytes(6).toString('hex')}:` }
}
