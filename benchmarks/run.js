// Measures every server in SERVERS on every scenario in SCENARIOS and payload in
// PAYLOADS, then the scaling run: each run forks a fresh server, checks its
// answers, warms it up, then loads it with autocannon from this process while
// the server meters its own CPU time. Ends by regenerating the chart and the
// README's performance section from the results.
// Usage: node benchmarks/run.js [--quick] [--scaling] [--duration <s>] [--rounds <n>] [--counts <n,n,…>] [--servers <name,name,…>]
//   [--scenarios <name,name,…>] [--payloads <bytes,bytes,…>] [--no-scaling] [--profile] [--no-report]
import { execFileSync, fork } from 'node:child_process'
import { once } from 'node:events'
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'
import { Redis } from 'ioredis'
import * as redisCluster from './redis-cluster.js'
import { writeChart } from './chart.js'
import { writeReport } from './report.js'

// To add a server: a file in servers/ and a line here.
// `sessions: false`: it never sets a cookie. `redis`: it stores in Redis under
// BENCH_REDIS_PREFIX. `dir`: it stores files in BENCH_FILE_DIR. `ours`: this plugin.
const ALL_SERVERS = [
  { name: 'bare', sessions: false },
  { name: 'fastify-cookie', sessions: false },
  { name: 'secure-session', sessions: true },
  { name: 'mgcrea-sodium', sessions: true },
  { name: 'iron-session', sessions: true },
  { name: 'fastify-sessions-cookie', sessions: true, ours: true },
  { name: 'fastify-sessions-cookie-revocable', sessions: true, ours: true },
  { name: 'fastify-sessions-cookie-archive', sessions: true, ours: true },
  { name: 'fastify-sessions-cookie-chunk', sessions: true, ours: true },
  { name: 'fastify-session-memory', sessions: true },
  { name: 'mgcrea-memory', sessions: true },
  { name: 'fastify-sessions-memory', sessions: true, ours: true },
  { name: 'fastify-sessions-memory-bound', sessions: true, ours: true },
  { name: 'fastify-session-redis', sessions: true, redis: true },
  { name: 'mgcrea-redis', sessions: true, redis: true },
  { name: 'fastify-sessions-redis', sessions: true, ours: true, redis: true },
  // `redisCluster`: it stores in a Redis Cluster of three masters that the harness starts on spare ports.
  { name: 'fastify-sessions-redis-cluster', sessions: true, ours: true, redisCluster: true },
  { name: 'fastify-sessions-file', sessions: true, ours: true, dir: true }
]
const BASELINE = 'bare'
const byName = (name) => ALL_SERVERS.find((server) => server.name === name)

// `cookie`: requests carry a valid session cookie; `saves`: a session server must answer with Set-Cookie;
// `repeated`: every request carries the same cookie, as one browser does, instead of the pool's in turn.
const SCENARIOS = [
  { name: 'untouched', path: '/untouched', cookie: true, saves: false, body: { ok: true } },
  { name: 'read', path: '/read', cookie: true, saves: false, body: { name: 'Ada Lovelace' } },
  { name: 'repeated', path: '/read', cookie: true, repeated: true, saves: false, body: { name: 'Ada Lovelace' } },
  { name: 'write', path: '/write', cookie: true, saves: true, body: { visits: 4 } },
  { name: 'new', path: '/new', cookie: false, saves: true, body: { ok: true } }
]
// JSON bytes of the stored session; 53 is the base payload with nothing added.
const PAYLOADS = [53, 1024]

// Scaling run: stored sessions per archive, and cookie-mode payload sizes up to
// 2800 bytes, whose sealed cookie (4072 bytes of Set-Cookie) is the largest
// under the 4096-byte limit in steps of 100.
const ARCHIVE_SERVERS = ['fastify-sessions-memory', 'fastify-sessions-redis', 'fastify-sessions-file']
const COOKIE_SIZES = [100, 500, 1000, 1500, 2000, 2500, 2800]
const COOKIE_SIZE_SCENARIOS = ['read', 'write']

/**
 * Sessions created per server run; requests carry their cookies in turn. More
 * than any cache of recently verified cookies holds, so that each request
 * pays the full verification, as the peers always do; the `repeated` scenario
 * measures the other end, one browser sending its cookie again and again.
 */
const COOKIE_POOL = 1200
const STEP_TIMEOUT_MS = 15_000
/**
 * The longest a population may take before that size is skipped (and said so
 * in the results): the file archive writes a directory and a file per session,
 * about 80 s for 100,000 on the reference machine.
 */
const POPULATE_TIMEOUT_MS = 5 * 60_000
const REDIS_URL = 'redis://127.0.0.1:6379'
/** Every Redis key of this run starts with this; all are deleted at the end, whatever happened. */
const RUN_PREFIX = `fastify-sessions-bench:${process.pid}:${Date.now()}:`

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    scaling: { type: 'boolean', default: false },
    'no-scaling': { type: 'boolean', default: false },
    duration: { type: 'string' },
    rounds: { type: 'string' },
    counts: { type: 'string' },
    servers: { type: 'string' },
    scenarios: { type: 'string' },
    payloads: { type: 'string' },
    profile: { type: 'boolean', default: false },
    'no-report': { type: 'boolean', default: false }
  }
})
// --servers a,b: only those (and always the baseline), e.g. to measure one change quickly.
const SERVERS = args.servers === undefined
  ? ALL_SERVERS
  : ALL_SERVERS.filter((server) => server.name === BASELINE || args.servers.split(',').includes(server.name))
if (args.servers !== undefined && SERVERS.length !== new Set([BASELINE, ...args.servers.split(',')]).size) {
  throw new Error(`--servers: unknown server in "${args.servers}"; the servers are ${ALL_SERVERS.map((server) => server.name).join(', ')}`)
}
// --scenarios a,b: only those scenarios of the main run.
const SCENARIOS_RUN = args.scenarios === undefined ? SCENARIOS : SCENARIOS.filter((scenario) => args.scenarios.split(',').includes(scenario.name))
if (args.scenarios !== undefined && SCENARIOS_RUN.length !== new Set(args.scenarios.split(',')).size) {
  throw new Error(`--scenarios: unknown scenario in "${args.scenarios}"; the scenarios are ${SCENARIOS.map((scenario) => scenario.name).join(', ')}`)
}
const settings = {
  quick: args.quick,
  connections: 50,
  duration: positiveNumber('--duration', args.duration ?? (args.quick ? 1 : 4)),
  warmup: args.quick ? 0.5 : 1,
  rounds: positiveNumber('--rounds', args.rounds ?? (args.quick ? 1 : 2), true)
}
if (args.scaling && args['no-scaling']) throw new Error('--scaling and --no-scaling exclude each other')
const plan = {
  main: !args.scaling,
  scaling: args.scaling || (!args.quick && !args['no-scaling']),
  payloads: args.payloads?.split(',').map((n) => positiveNumber('--payloads', n, true)) ?? (args.quick ? PAYLOADS.slice(0, 1) : PAYLOADS),
  counts: args.counts?.split(',').map((n) => positiveNumber('--counts', n, true)) ?? (args.quick ? [1_000, 10_000] : [1_000, 10_000, 100_000]),
  cookieSizes: args.quick ? [100, 1000, 2800] : COOKIE_SIZES
}

/**
 * --profile: each server process runs under `--cpu-prof`, its profile written
 * here when it exits (it is stopped by closing its IPC channel, not killed).
 * The profile covers the process's whole life: start-up, the 1,200 sessions,
 * the warm-up and the window.
 */
const PROFILE_DIR = args.profile ? fileURLToPath(new URL(`profiles/${new Date().toISOString().replace(/[:.]/g, '-')}/`, import.meta.url)) : undefined
/** How long a profiled server may take to write its profile and exit before it is killed. */
const PROFILE_EXIT_MS = 30_000

function positiveNumber (flag, value, whole = false) {
  const number = Number(value)
  if (!Number.isFinite(number) || number <= 0 || (whole && !Number.isSafeInteger(number)) || number > 1_000_000) {
    throw new Error(`${flag} must be a ${whole ? 'whole ' : ''}number greater than 0`)
  }
  return number
}

// ---- Children, directories and Redis keys: all of them go at the end, whatever happened.

const children = new Set()
const dirs = new Set()
let redis
let cluster

function killChildren () {
  for (const child of children) child.kill('SIGKILL')
}

function removeDirs () {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
  dirs.clear()
}

async function deleteKeys (prefix) {
  if (redis === undefined) return 0
  let deleted = 0
  let cursor = '0'
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
    cursor = next
    if (keys.length > 0) deleted += await redis.unlink(...keys)
  } while (cursor !== '0')
  return deleted
}

async function cleanUp () {
  killChildren()
  removeDirs()
  await redisCluster.stop()
  if (redis !== undefined) {
    await deleteKeys(RUN_PREFIX).catch((error) => console.error(`could not delete the Redis keys under ${RUN_PREFIX}: ${error.message}`))
    redis.disconnect()
    redis = undefined
  }
}

process.on('exit', () => {
  redisCluster.stop()
  killChildren()
  removeDirs()
})
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    const deadline = setTimeout(() => process.exit(1), 5000)
    cleanUp().finally(() => {
      clearTimeout(deadline)
      process.exit(1)
    })
  })
}

// ---- One server process.

/** Resolves with the server's next message of `type`; rejects if it exits or stays silent. */
function reply (child, type, timeoutMs = STEP_TIMEOUT_MS) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(new Error(`the server did not send '${type}' within ${timeoutMs} ms`)), timeoutMs)
    const onMessage = (message) => { if (message?.type === type) done(undefined, message) }
    const onExit = (code, signal) => done(new Error(`the server exited (${signal ?? code}) before sending '${type}'`))
    function done (error, message) {
      clearTimeout(timer)
      child.off('message', onMessage)
      child.off('exit', onExit)
      if (error) reject(error)
      else resolve(message)
    }
    child.on('message', onMessage)
    child.on('exit', onExit)
  })
}

function ask (child, message, answer, timeoutMs) {
  const answered = reply(child, answer, timeoutMs)
  child.send(message)
  return answered
}

let started = 0
let profiled = 0

/** `label` names the run's CPU profile with --profile. */
async function startServer (server, payloadBytes, label) {
  const file = fileURLToPath(new URL(`servers/${server.name}.js`, import.meta.url))
  const env = { ...process.env, PORT: '0', BENCH_PAYLOAD_BYTES: String(payloadBytes), BENCH_REDIS_URL: REDIS_URL }
  let prefix
  let dir
  if (server.redis) {
    prefix = `${RUN_PREFIX}${server.name}:${++started}:`
    env.BENCH_REDIS_PREFIX = prefix
  }
  if (server.redisCluster) {
    cluster ??= redisCluster.start()
    env.BENCH_REDIS_CLUSTER_NODES = (await cluster).nodes.map(({ host, port }) => `${host}:${port}`).join(',')
    env.BENCH_REDIS_PREFIX = `${RUN_PREFIX}${server.name}:${++started}:`
  }
  if (server.dir) {
    dir = mkdtempSync(path.join(os.tmpdir(), 'fastify-sessions-bench-'))
    dirs.add(dir)
    env.BENCH_FILE_DIR = dir
  }
  // --expose-gc: the scaling run measures memory after a collection.
  const execArgv = ['--expose-gc']
  if (PROFILE_DIR !== undefined) {
    execArgv.push('--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`, `--cpu-prof-name=${label}-${++profiled}.cpuprofile`)
  }
  const child = fork(file, [], { env, execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  children.add(child)
  child.once('exit', () => children.delete(child))
  const stop = async () => {
    await stopServer(child)
    if (prefix !== undefined) await deleteKeys(prefix)
    if (dir !== undefined) {
      rmSync(dir, { recursive: true, force: true })
      dirs.delete(dir)
    }
  }
  try {
    const ready = await reply(child, 'ready')
    return { child, origin: `http://127.0.0.1:${ready.port}`, payloadBytes: ready.payloadBytes, stop }
  } catch (error) {
    await stop()
    throw error
  }
}

async function stopServer (child) {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = once(child, 'exit')
  if (PROFILE_DIR !== undefined && child.connected) {
    // A server exits when its channel closes (bench-server.js), which writes its profile.
    const timer = setTimeout(() => child.kill('SIGKILL'), PROFILE_EXIT_MS)
    child.disconnect()
    await exited
    clearTimeout(timer)
    return
  }
  child.kill('SIGKILL')
  await exited
}

/**
 * `COOKIE_POOL` sessions created through `/__setup` over HTTP, 16 requests at
 * a time: the `Cookie` header value of each, as the browser sends it back (a
 * session split over chunks has several). `cookieless`: the same requests for
 * a server without sessions, so that its memory has the same history before
 * the window. Over HTTP, not with `app.inject()` in the server: V8 decides from
 * the objects that survive a collection which allocation sites to place in the
 * old generation at once, and a server that had answered 1,200 injected
 * requests kept such decisions that real traffic never leads to (an untouched
 * cookie-mode route 30-39 µs against 24, peak RSS 110-165 MB against 80).
 */
async function cookiePool (running, cookieless = false) {
  const cookies = []
  let made = 0
  async function worker () {
    while (made < COOKIE_POOL) {
      made++
      const response = await fetch(`${running.origin}/__setup`, { signal: AbortSignal.timeout(STEP_TIMEOUT_MS) })
      await response.arrayBuffer()
      const set = response.headers.getSetCookie().filter((line) => !/; Max-Age=0(;|$)/.test(line))
      if (response.status !== 200 || (set.length === 0 && !cookieless)) {
        throw new Error(`could not create sessions: /__setup answered ${response.status} without a cookie`)
      }
      if (set.length > 0) cookies.push(set.map((line) => line.split(';')[0]).join('; '))
    }
  }
  await Promise.all(Array.from({ length: 16 }, worker))
  return cookies
}

/** Each cookie in turn: with more cookies than any cache holds, no request finds its cookie remembered. */
function inTurn (cookies) {
  let next = 0
  return () => cookies[next++ % cookies.length]
}

const atRandom = (cookies) => () => cookies[Math.floor(Math.random() * cookies.length)]

/** One request before any load: the answer, and whether it sets a cookie, must be the scenario's. */
async function check (origin, server, scenario, cookie) {
  const response = await fetch(`${origin}${scenario.path}`, {
    headers: cookie === undefined ? {} : { cookie },
    signal: AbortSignal.timeout(STEP_TIMEOUT_MS)
  })
  const body = await response.text()
  const where = `${server.name} GET ${scenario.path} (${scenario.name})`
  if (response.status !== 200 || body !== JSON.stringify(scenario.body)) {
    throw new Error(`${where} answered ${response.status} ${body}, expected 200 ${JSON.stringify(scenario.body)}`)
  }
  const setsCookie = response.headers.getSetCookie().length > 0
  if (setsCookie !== (server.sessions && scenario.saves)) {
    throw new Error(`${where} ${setsCookie ? 'sent' : 'did not send'} Set-Cookie`)
  }
}

/** Loads `path` for `duration` seconds; each request carries the cookie `draw()` gives (none without `draw`). */
async function load (origin, path, draw, duration) {
  const result = await autocannon({
    url: origin,
    connections: settings.connections,
    duration,
    requests: [{
      method: 'GET',
      path,
      setupRequest (request) {
        if (draw !== undefined) request.headers.cookie = draw()
        return request
      }
    }]
  })
  const { errors, timeouts, non2xx } = result
  if (errors + timeouts + non2xx > 0 || result.requests.total === 0) {
    throw new Error(`GET ${path}: ${result.requests.total} requests, ${errors} errors, ${timeouts} timeouts, ${non2xx} non-2xx`)
  }
  return result
}

async function redisInfo (section, field) {
  const text = await redis.info(section)
  const match = new RegExp(`^${field}:([0-9.]+)`, 'm').exec(text)
  return match === null ? NaN : Number(match[1])
}

async function redisCpuUs () {
  return ((await redisInfo('cpu', 'used_cpu_user')) + (await redisInfo('cpu', 'used_cpu_sys'))) * 1e6
}

/** Warms up, then measures one load of `path` on a started server. */
async function measured (server, running, path, draw) {
  const { child, origin } = running
  await load(origin, path, draw, settings.warmup)
  const redisBefore = server.redis ? await redisCpuUs() : undefined
  await ask(child, { type: 'start' }, 'started')
  const result = await load(origin, path, draw, settings.duration)
  const { cpu, maxRssKb, peakScope } = await ask(child, { type: 'stop' }, 'stopped')
  const redisAfter = server.redis ? await redisCpuUs() : undefined
  const requests = result.requests.total
  return {
    requests,
    reqPerSec: requests / result.duration,
    p99Ms: result.latency.p99,
    cpuUserUs: cpu.user,
    cpuSystemUs: cpu.system,
    cpuUsPerReq: (cpu.user + cpu.system) / requests,
    peakRssMb: maxRssKb / 1024,
    peakRssScope: peakScope,
    ...(server.redis ? { redisCpuUsPerReq: (redisAfter - redisBefore) / requests } : {})
  }
}

/** The cookies that bare Fastify receives: the same bytes as fastify-sessions' cookie mode sends, per payload. */
const bareCookies = new Map()

async function probeBareCookies (payloadBytes) {
  // Above one cookie's worth, the chunks that carry such a session.
  for (const name of ['fastify-sessions-cookie', 'fastify-sessions-cookie-chunk']) {
    const running = await startServer(byName(name), payloadBytes, `probe-${payloadBytes}B`)
    try {
      bareCookies.set(payloadBytes, await cookiePool(running))
      return
    } catch (error) {
      if (name !== 'fastify-sessions-cookie') throw error
    } finally {
      await running.stop()
    }
  }
}

/** The most bytes of one cookie's name and value that browsers keep (RFC 6265's floor, Chrome's and Firefox's limit). */
const BROWSER_COOKIE_BYTES = 4096

/**
 * Why `server` cannot run a session of this size, or undefined: it could not
 * create one (it refuses sessions that large), or it sends a cookie browsers drop.
 */
async function cannotRun (server, running) {
  if (!server.sessions) return undefined
  let cookies
  try {
    cookies = await cookiePool(running)
  } catch (error) {
    return { reason: `could not create a session: ${String(error.message).split('\n')[0].slice(0, 160)}` }
  }
  const largest = Math.max(...cookies.flatMap((header) => header.split('; ').map((pair) => Buffer.byteLength(pair))))
  if (largest > BROWSER_COOKIE_BYTES) return { reason: `sends a ${largest}-byte cookie, which browsers drop (over ${BROWSER_COOKIE_BYTES})`, cookies }
  return { cookies }
}

async function measure (server, scenario, payloadBytes, round) {
  const running = await startServer(server, payloadBytes, `${server.name}-${scenario.name}-${payloadBytes}B-round${round + 1}`)
  try {
    let cookies = []
    if (plan.payloads.some((bytes) => bytes > PAYLOADS[1])) {
      // Sizes beyond the usual ones: a server that cannot hold such a session is reported, not measured.
      const verdict = await cannotRun(server, running)
      if (verdict?.reason !== undefined) return { skipped: true, scenario: scenario.name, payloadBytes: running.payloadBytes, server: server.name, round, reason: verdict.reason }
      if (scenario.cookie && verdict !== undefined) cookies = verdict.cookies
    } else if (scenario.cookie && server.sessions) cookies = await cookiePool(running)
    if (scenario.cookie && !server.sessions) {
      await cookiePool(running, true)
      cookies = bareCookies.get(payloadBytes)
    }
    if (scenario.repeated) cookies = cookies.slice(0, 1)
    const draw = cookies.length === 0 ? undefined : inTurn(cookies)
    await check(running.origin, server, scenario, draw?.())
    return {
      scenario: scenario.name,
      payloadBytes: running.payloadBytes,
      server: server.name,
      round,
      cookieBytes: cookies.length === 0 ? 0 : mean(cookies.map((cookie) => cookie.length)),
      ...await measured(server, running, scenario.path, draw)
    }
  } finally {
    await running.stop()
  }
}

const mean = (numbers) => numbers.reduce((sum, n) => sum + n, 0) / numbers.length

/** Per scenario, payload and server: each figure averaged over rounds, and its ratio to the baseline of the same round. */
function summarise (measurements) {
  const key = (m) => `${m.scenario} ${m.payloadBytes} ${m.round}`
  const baseline = new Map(measurements.filter((m) => m.server === BASELINE).map((m) => [key(m), m]))
  const cells = []
  for (const scenario of SCENARIOS) {
    for (const payloadBytes of plan.payloads) {
      for (const server of SERVERS) {
        const mine = measurements.filter((m) => m.scenario === scenario.name && m.payloadBytes === payloadBytes && m.server === server.name)
        if (mine.length === 0) continue
        const average = (field) => mean(mine.map((m) => m[field]))
        const ratio = (field) => mean(mine.map((m) => m[field] / baseline.get(key(m))[field]))
        cells.push({
          scenario: scenario.name,
          payloadBytes,
          server: server.name,
          ours: server.ours === true,
          rounds: mine.length,
          reqPerSec: average('reqPerSec'),
          reqPerSecRatio: ratio('reqPerSec'),
          p99Ms: average('p99Ms'),
          p99Ratio: ratio('p99Ms'),
          cpuUsPerReq: average('cpuUsPerReq'),
          cpuRatio: ratio('cpuUsPerReq'),
          peakRssMb: average('peakRssMb'),
          peakRssRatio: ratio('peakRssMb'),
          cookieBytes: average('cookieBytes'),
          ...(server.redis ? { redisCpuUsPerReq: average('redisCpuUsPerReq') } : {})
        })
      }
    }
  }
  return cells
}

// ---- Scaling run.

async function scaleArchive (server, count) {
  const running = await startServer(server, PAYLOADS[0], `scaling-${server.name}-${count}`)
  try {
    const memoryBefore = server.redis ? await redisInfo('memory', 'used_memory') : undefined
    let populated
    try {
      populated = await ask(running.child, { type: 'populate', count }, 'populated', POPULATE_TIMEOUT_MS)
    } catch (error) {
      return { kind: 'scaling', scaling: 'archive', scenario: 'read', server: server.name, sessions: count, skipped: error.message }
    }
    if (populated.error !== undefined) throw new Error(`${server.name} could not store ${count} sessions: ${populated.error}`)
    const memoryAfter = server.redis ? await redisInfo('memory', 'used_memory') : undefined
    const { cookies } = populated
    await check(running.origin, server, SCENARIOS.find((s) => s.name === 'read'), cookies[cookies.length - 1])
    return {
      kind: 'scaling',
      scaling: 'archive',
      scenario: 'read',
      server: server.name,
      sessions: count,
      payloadBytes: running.payloadBytes,
      populateSeconds: populated.seconds,
      rssBytesPerSession: populated.rssDeltaBytes / count,
      heapBytesPerSession: populated.heapDeltaBytes / count,
      ...(server.redis ? { redisBytesPerSession: (memoryAfter - memoryBefore) / count } : {}),
      ...await measured(server, running, '/read', atRandom(cookies))
    }
  } finally {
    await running.stop()
  }
}

async function scaleCookie (server, scenario, payloadBytes) {
  const running = await startServer(server, payloadBytes, `scaling-${server.name}-${scenario.name}-${payloadBytes}B`)
  try {
    const cookies = await cookiePool(running)
    const draw = inTurn(cookies)
    await check(running.origin, server, scenario, draw())
    return {
      kind: 'scaling',
      scaling: 'cookie',
      scenario: scenario.name,
      server: server.name,
      payloadBytes: running.payloadBytes,
      cookieBytes: mean(cookies.map((cookie) => cookie.length)),
      ...await measured(server, running, scenario.path, draw)
    }
  } finally {
    await running.stop()
  }
}

// ---- The run.

// Start-up, 1,200 sessions, check and teardown per run, measured on a busy 2-core machine.
const OVERHEAD_S = 2
function estimateSeconds () {
  const perRun = settings.warmup + settings.duration + OVERHEAD_S
  let seconds = 0
  if (plan.main) seconds += (plan.payloads.length + SCENARIOS_RUN.length * plan.payloads.length * SERVERS.length * settings.rounds) * perRun
  if (plan.scaling) {
    // Population, measured here: about 25 µs a session in memory, 60 in Redis, 750 on disk and as much to remove it.
    const populate = plan.counts.reduce((sum, n) => sum + n * (25 + 60 + 750 + 750) / 1e6, 0)
    seconds += plan.counts.length * ARCHIVE_SERVERS.length * perRun + populate
    seconds += plan.cookieSizes.length * COOKIE_SIZE_SCENARIOS.length * perRun
  }
  return seconds
}

function packageVersion (name) {
  try {
    return JSON.parse(readFileSync(new URL(`../node_modules/${name}/package.json`, import.meta.url), 'utf8')).version
  } catch {
    return undefined
  }
}

/** The commit measured, with `+changes` when lib/ differs from it. */
function gitCommit () {
  const git = (...args) => execFileSync('git', args, { cwd: fileURLToPath(new URL('..', import.meta.url)), encoding: 'utf8' }).trim()
  try {
    return git('rev-parse', '--short', 'HEAD') + (git('status', '--porcelain', '--', 'lib') === '' ? '' : '+changes')
  } catch {
    return undefined
  }
}

const run = new Date().toISOString()
const ownVersion = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version
const machine = {
  node: process.version,
  cpus: os.availableParallelism(),
  cpuModel: os.cpus()[0]?.model,
  memoryGb: Math.round(os.totalmem() / 2 ** 30),
  platform: `${os.type()} ${os.release()}`
}
const versions = Object.fromEntries([
  'fastify', '@fastify/secure-session', '@fastify/session', '@fastify/cookie', 'connect-redis', 'redis', 'ioredis',
  '@mgcrea/fastify-session', '@mgcrea/fastify-session-sodium-crypto', '@mgcrea/fastify-session-redis-store',
  'iron-session', 'autocannon'
].map((name) => [name, packageVersion(name)]))
const resultsDir = new URL('results/', import.meta.url)
mkdirSync(resultsDir, { recursive: true })
const resultsFile = new URL(`${run.slice(0, 10)}.jsonl`, resultsDir)
const record = (line) => appendFileSync(resultsFile, JSON.stringify({ run, ...line }) + '\n')

function table (header, rows) {
  return [`| ${header.join(' | ')} |`, `|${header.map((_, i) => i < 3 ? '---' : '---:').join('|')}|`,
    ...rows.map((row) => `| ${row.join(' | ')} |`)].join('\n')
}

async function main () {
  const startedAt = performance.now()
  const estimate = estimateSeconds()
  const command = ['node', 'benchmarks/run.js', ...process.argv.slice(2)].join(' ')
  console.error(`Planned: about ${Math.ceil(estimate / 60)} min (${plan.main ? 'main' : ''}${plan.main && plan.scaling ? ' + ' : ''}${plan.scaling ? 'scaling' : ''})`)
  record({
    kind: 'run',
    command,
    ...settings,
    main: plan.main,
    scaling: plan.scaling,
    payloads: plan.payloads,
    counts: plan.scaling ? plan.counts : [],
    cookieSizes: plan.scaling ? plan.cookieSizes : [],
    cookiePool: COOKIE_POOL,
    servers: SERVERS.map((s) => s.name),
    profileDir: PROFILE_DIR,
    machine,
    versions,
    fastifySessions: ownVersion,
    commit: gitCommit(),
    estimateSeconds: Math.round(estimate)
  })

  redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1, connectTimeout: 5000, commandTimeout: 30_000 })
  try {
    await redis.connect()
  } catch (error) {
    redis.disconnect()
    redis = undefined
    throw new Error(`Redis does not answer on ${REDIS_URL} (${error.message}); the Redis-backed servers need it`)
  }

  if (plan.main) {
    const measurements = []
    /** Per server and payload, why it could not run that payload. */
    const skipped = new Map()
    for (const payloadBytes of plan.payloads) await probeBareCookies(payloadBytes)
    for (const scenario of SCENARIOS_RUN) {
      for (const payloadBytes of plan.payloads) {
        for (let round = 0; round < settings.rounds; round++) {
          // Odd rounds run the servers in reverse, so drift over time cancels in the average.
          const order = round % 2 === 0 ? SERVERS : [...SERVERS].reverse()
          for (const server of order) {
            console.error(`${scenario.name}, ${payloadBytes} B: ${server.name}, round ${round + 1} of ${settings.rounds}`)
            const measurement = await measure(server, scenario, payloadBytes, round)
            if (measurement.skipped === true) {
              skipped.set(`${server.name} ${payloadBytes}`, measurement.reason)
              record({ kind: 'skipped', suite: 'main', ...measurement })
              continue
            }
            measurements.push(measurement)
            record({ kind: 'measurement', suite: 'main', ...measurement })
          }
        }
      }
    }
    const summary = summarise(measurements)
    for (const cell of summary) record({ kind: 'summary', suite: 'main', ...cell })
    console.log(`\n${settings.connections} connections, ${settings.duration} s per run after ${settings.warmup} s of warm-up, ` +
      `${settings.rounds} round${settings.rounds === 1 ? '' : 's'}; Node ${machine.node}, ${machine.cpus} CPUs (${machine.cpuModel})\n`)
    console.log(table(
      ['scenario', 'payload', 'server', 'req/s', 'req/s × bare', 'p99 ms', 'p99 × bare', 'CPU µs/req', 'CPU × bare', 'peak RSS MB', 'RSS × bare'],
      summary.map((s) => [s.scenario, `${s.payloadBytes} B`, s.server, s.reqPerSec.toFixed(0), s.reqPerSecRatio.toFixed(2),
        s.p99Ms.toFixed(1), s.p99Ratio.toFixed(2), s.cpuUsPerReq.toFixed(1), s.cpuRatio.toFixed(2), s.peakRssMb.toFixed(1), s.peakRssRatio.toFixed(2)])
    ))
    for (const [what, reason] of skipped) console.log(`not measured: ${what} B: ${reason}`)
  }

  if (plan.scaling) {
    const archiveRows = []
    for (const count of plan.counts) {
      for (const name of ARCHIVE_SERVERS) {
        console.error(`scaling: ${name} with ${count} stored sessions`)
        const line = await scaleArchive(byName(name), count)
        archiveRows.push(line)
        record({ suite: 'scaling', ...line })
      }
    }
    const cookieRows = []
    for (const scenario of COOKIE_SIZE_SCENARIOS) {
      for (const bytes of plan.cookieSizes) {
        console.error(`scaling: fastify-sessions-cookie, ${scenario} with ${bytes} B`)
        const line = await scaleCookie(byName('fastify-sessions-cookie'), SCENARIOS.find((s) => s.name === scenario), bytes)
        cookieRows.push(line)
        record({ suite: 'scaling', ...line })
      }
    }
    console.log('\nScaling: reads of random stored sessions\n')
    console.log(table(['server', 'sessions', 'populate s', 'req/s', 'p99 ms', 'CPU µs/req', 'RSS B/session', 'heap B/session', 'Redis B/session'],
      archiveRows.map((r) => r.skipped !== undefined
        ? [r.server, r.sessions, `skipped: ${r.skipped}`, '', '', '', '', '', '']
        : [r.server, r.sessions, r.populateSeconds.toFixed(1), r.reqPerSec.toFixed(0), r.p99Ms.toFixed(1),
            r.cpuUsPerReq.toFixed(1), r.rssBytesPerSession.toFixed(0), r.heapBytesPerSession.toFixed(0), r.redisBytesPerSession?.toFixed(0) ?? '']))
    )
    console.log('\nScaling: cookie mode by payload size\n')
    console.log(table(['scenario', 'payload B', 'cookie B', 'req/s', 'p99 ms', 'CPU µs/req'],
      cookieRows.map((r) => [r.scenario, r.payloadBytes, r.cookieBytes.toFixed(0), r.reqPerSec.toFixed(0), r.p99Ms.toFixed(1), r.cpuUsPerReq.toFixed(1)]))
    )
  }

  const elapsed = (performance.now() - startedAt) / 1000
  record({ kind: 'done', elapsedSeconds: Math.round(elapsed) })
  console.log(`\nTook ${Math.round(elapsed)} s (planned ${Math.round(estimate)} s). Raw results: ${fileURLToPath(resultsFile)}`)
  if (PROFILE_DIR !== undefined) console.log(`CPU profiles, one per server run (open in Chrome DevTools or speedscope): ${PROFILE_DIR}`)
}

try {
  await main()
} finally {
  await cleanUp()
}
if (!args['no-report']) {
  console.log(`Chart: ${writeChart()}`)
  console.log(`benchmarks/README.md section: ${writeReport()}`)
}
