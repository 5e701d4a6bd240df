// Measures every server in SERVERS on every scenario in SCENARIOS: each run
// forks a fresh server, checks its answers, warms it up, then loads it with
// autocannon from this process while the server meters its own CPU time.
// Usage: node benchmarks/run.js [--quick] [--duration <s>] [--rounds <n>]
import { fork } from 'node:child_process'
import { once } from 'node:events'
import { appendFileSync, mkdirSync } from 'node:fs'
import os from 'node:os'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'

// To add a server: a file in servers/ and a line here. `sessions: false`: it never sets a cookie.
const SERVERS = [
  { name: 'bare', sessions: false },
  { name: 'secure-session', sessions: true },
  { name: 'fastify-sessions-cookie', sessions: true }
]
const BASELINE = 'bare'

// `cookie`: requests carry a valid session cookie; `saves`: a session server must answer with Set-Cookie.
const SCENARIOS = [
  { name: 'untouched', cookie: true, saves: false, body: { ok: true } },
  { name: 'read', cookie: true, saves: false, body: { name: 'Ada Lovelace' } },
  { name: 'write', cookie: true, saves: true, body: { visits: 4 } },
  { name: 'new', cookie: false, saves: true, body: { ok: true } }
]

const STEP_TIMEOUT_MS = 15_000

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    duration: { type: 'string' },
    rounds: { type: 'string' }
  }
})
const settings = {
  connections: 50,
  duration: wholeNumber('--duration', args.duration ?? (args.quick ? 2 : 10)),
  warmup: args.quick ? 1 : 2,
  rounds: wholeNumber('--rounds', args.rounds ?? (args.quick ? 1 : 2))
}

function wholeNumber (flag, value) {
  const number = Number(value)
  if (!Number.isSafeInteger(number) || number < 1 || number > 600) throw new Error(`${flag} must be a whole number from 1 to 600`)
  return number
}

const children = new Set()
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL')
})
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(1))

/** Resolves with the server's next message of `type`; rejects if it exits or stays silent. */
function reply (child, type) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(new Error(`the server did not send '${type}' within ${STEP_TIMEOUT_MS} ms`)), STEP_TIMEOUT_MS)
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

function ask (child, type, answer) {
  const answered = reply(child, answer)
  child.send({ type })
  return answered
}

async function startServer (server) {
  const file = fileURLToPath(new URL(`servers/${server.name}.js`, import.meta.url))
  const child = fork(file, [], { env: { ...process.env, PORT: '0' }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  children.add(child)
  child.once('exit', () => children.delete(child))
  const { port } = await reply(child, 'ready')
  return { child, origin: `http://127.0.0.1:${port}` }
}

async function stopServer (child) {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = once(child, 'exit')
  child.kill('SIGKILL')
  await exited
}

async function sessionCookie (origin) {
  const response = await fetch(`${origin}/__setup`, { signal: AbortSignal.timeout(STEP_TIMEOUT_MS) })
  const setCookie = response.headers.getSetCookie()[0]
  if (!response.ok || setCookie === undefined) throw new Error(`GET ${origin}/__setup answered ${response.status} without a session cookie`)
  return setCookie.split(';')[0]
}

/** One request before any load: the answer, and whether it sets a cookie, must be the scenario's. */
async function check (origin, server, scenario, cookie) {
  const response = await fetch(`${origin}/${scenario.name}`, {
    headers: cookie === undefined ? {} : { cookie },
    signal: AbortSignal.timeout(STEP_TIMEOUT_MS)
  })
  const body = await response.text()
  const where = `${server.name} GET /${scenario.name}`
  if (response.status !== 200 || body !== JSON.stringify(scenario.body)) {
    throw new Error(`${where} answered ${response.status} ${body}, expected 200 ${JSON.stringify(scenario.body)}`)
  }
  const setsCookie = response.headers.getSetCookie().length > 0
  if (setsCookie !== (server.sessions && scenario.saves)) {
    throw new Error(`${where} ${setsCookie ? 'sent' : 'did not send'} Set-Cookie`)
  }
}

async function load (origin, scenario, cookie, duration) {
  const result = await autocannon({
    url: `${origin}/${scenario.name}`,
    connections: settings.connections,
    duration,
    headers: cookie === undefined ? {} : { cookie }
  })
  const { errors, timeouts, non2xx } = result
  if (errors + timeouts + non2xx > 0 || result.requests.total === 0) {
    throw new Error(`GET /${scenario.name}: ${result.requests.total} requests, ${errors} errors, ${timeouts} timeouts, ${non2xx} non-2xx`)
  }
  return result
}

async function measure (server, scenario, round) {
  const { child, origin } = await startServer(server)
  try {
    const cookie = scenario.cookie && server.sessions ? await sessionCookie(origin) : undefined
    await check(origin, server, scenario, cookie)
    await load(origin, scenario, cookie, settings.warmup)
    await ask(child, 'start', 'started')
    const result = await load(origin, scenario, cookie, settings.duration)
    const { cpu, maxRssKb } = await ask(child, 'stop', 'stopped')
    const requests = result.requests.total
    return {
      scenario: scenario.name,
      server: server.name,
      round,
      requests,
      reqPerSec: result.requests.average,
      p99Ms: result.latency.p99,
      cpuUserUs: cpu.user,
      cpuSystemUs: cpu.system,
      cpuUsPerReq: (cpu.user + cpu.system) / requests,
      peakRssMb: maxRssKb / 1024
    }
  } finally {
    await stopServer(child)
  }
}

const mean = (numbers) => numbers.reduce((sum, n) => sum + n, 0) / numbers.length

/** Per scenario and server: each figure averaged over rounds, and its ratio to the baseline of the same round. */
function summarise (measurements) {
  const baseline = new Map(measurements.filter((m) => m.server === BASELINE).map((m) => [`${m.scenario} ${m.round}`, m]))
  return SCENARIOS.flatMap((scenario) => SERVERS.map((server) => {
    const mine = measurements.filter((m) => m.scenario === scenario.name && m.server === server.name)
    const average = (field) => mean(mine.map((m) => m[field]))
    const ratio = (field) => mean(mine.map((m) => m[field] / baseline.get(`${m.scenario} ${m.round}`)[field]))
    return {
      scenario: scenario.name,
      server: server.name,
      reqPerSec: average('reqPerSec'),
      reqPerSecRatio: ratio('reqPerSec'),
      p99Ms: average('p99Ms'),
      cpuUsPerReq: average('cpuUsPerReq'),
      cpuRatio: ratio('cpuUsPerReq'),
      peakRssMb: average('peakRssMb')
    }
  }))
}

function markdown (summary) {
  const lines = [
    '| scenario | server | req/s | req/s × bare | p99 ms | CPU µs/req | CPU × bare | peak RSS MB |',
    '|---|---|---:|---:|---:|---:|---:|---:|'
  ]
  for (const s of summary) {
    lines.push(`| ${s.scenario} | ${s.server} | ${s.reqPerSec.toFixed(0)} | ${s.reqPerSecRatio.toFixed(2)} | ${s.p99Ms.toFixed(1)} | ` +
      `${s.cpuUsPerReq.toFixed(1)} | ${s.cpuRatio.toFixed(2)} | ${s.peakRssMb.toFixed(1)} |`)
  }
  return lines.join('\n')
}

const run = new Date().toISOString()
const machine = { node: process.version, cpus: os.availableParallelism(), cpuModel: os.cpus()[0]?.model }
const resultsDir = new URL('results/', import.meta.url)
mkdirSync(resultsDir, { recursive: true })
const resultsFile = new URL(`${run.slice(0, 10)}.jsonl`, resultsDir)
const record = (line) => appendFileSync(resultsFile, JSON.stringify({ run, ...line }) + '\n')

const measurements = []
for (const scenario of SCENARIOS) {
  for (let round = 0; round < settings.rounds; round++) {
    // Odd rounds run the servers in reverse, so drift over time cancels in the average.
    const order = round % 2 === 0 ? SERVERS : [...SERVERS].reverse()
    for (const server of order) {
      console.error(`${scenario.name}: ${server.name}, round ${round + 1} of ${settings.rounds}`)
      const measurement = await measure(server, scenario, round)
      measurements.push(measurement)
      record({ kind: 'measurement', ...settings, ...machine, ...measurement })
    }
  }
}

const summary = summarise(measurements)
for (const line of summary) record({ kind: 'summary', ...settings, ...machine, ...line })
console.log(`\n${settings.connections} connections, ${settings.duration} s per run after ${settings.warmup} s of warm-up, ` +
  `${settings.rounds} round${settings.rounds === 1 ? '' : 's'}; Node ${machine.node}, ${machine.cpus} CPUs (${machine.cpuModel})\n`)
console.log(markdown(summary))
console.log(`\nRaw results: ${fileURLToPath(resultsFile)}`)
