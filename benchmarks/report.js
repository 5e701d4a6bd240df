// Writes the performance section of README.md, between `<!-- bench:start -->`
// and `<!-- bench:end -->`, from the latest results: every number in it comes
// from benchmarks/results/, none is copied by hand. Without the markers, a
// `## Performance` section holding them is appended at the end.
// Usage: node benchmarks/report.js
import { readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { loadLatest, orderedServers, SCENARIO_ORDER } from './latest.js'

const START = '<!-- bench:start -->'
const END = '<!-- bench:end -->'
const README = new URL('../README.md', import.meta.url)

const fixed = (n, digits = 0) => (Number.isFinite(n) ? n.toFixed(digits) : '–')
const thousands = (n) => Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '–'

function table (header, align, rows) {
  return [`| ${header.join(' | ')} |`, `|${align.map((a) => a === 'r' ? '---:' : '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n')
}

function describeRun (info) {
  const m = info.machine
  return `${info.run.slice(0, 10)}, commit ${info.commit ?? 'unknown'}, fastify-sessions ${info.fastifySessions}; ` +
    `${m.cpus} × ${m.cpuModel}, ${m.memoryGb} GB, ${m.platform}; Node ${m.node}, Fastify ${info.versions.fastify}; ` +
    `\`${info.command}\`${info.quick ? ' (**quick run**: one short round, indicative only)' : ''}`
}

function cpuTables (main) {
  const { summary } = main
  const payloads = [...new Set(summary.map((c) => c.payloadBytes))].sort((a, b) => a - b)
  const scenarios = SCENARIO_ORDER.filter((s) => summary.some((c) => c.scenario === s))
  const servers = orderedServers(new Set(summary.map((c) => c.server)))
  const name = (server) => server.startsWith('fastify-sessions') ? `**${server}**` : server
  return payloads.map((payload) => {
    const rows = servers.map(({ server }) => [name(server), ...scenarios.map((scenario) => {
      const cell = summary.find((c) => c.server === server && c.scenario === scenario && c.payloadBytes === payload)
      return cell === undefined ? '' : `${fixed(cell.cpuUsPerReq)} (${fixed(cell.cpuRatio, 2)}×)`
    })])
    return `Server CPU µs per request (× bare Fastify), ${payload}-byte session:\n\n` +
      table(['server', ...scenarios], ['l', ...scenarios.map(() => 'r')], rows)
  }).join('\n\n')
}

function fullTable (main) {
  const { summary } = main
  const order = orderedServers(new Set(summary.map((c) => c.server))).map((s) => s.server)
  const cells = [...summary].sort((a, b) =>
    SCENARIO_ORDER.indexOf(a.scenario) - SCENARIO_ORDER.indexOf(b.scenario) || a.payloadBytes - b.payloadBytes ||
    order.indexOf(a.server) - order.indexOf(b.server))
  return table(
    ['scenario', 'payload B', 'server', 'req/s', '× bare', 'p99 ms', '× bare', 'CPU µs/req', '× bare', 'peak RSS MB', '× bare', 'cookie B', 'Redis CPU µs/req'],
    ['l', 'r', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
    cells.map((c) => [c.scenario, c.payloadBytes, c.server, thousands(c.reqPerSec), fixed(c.reqPerSecRatio, 2), fixed(c.p99Ms, 1), fixed(c.p99Ratio, 2),
      fixed(c.cpuUsPerReq, 1), fixed(c.cpuRatio, 2), fixed(c.peakRssMb, 1), fixed(c.peakRssRatio, 2), fixed(c.cookieBytes),
      c.redisCpuUsPerReq === undefined ? '' : fixed(c.redisCpuUsPerReq, 1)])
  )
}

/** Each target of the issues, checked against the run: the figure, the bound, and by how much it is met or missed. */
function targets (main, scaling) {
  const rows = []
  const cpu = (server, scenario, payload) => main.summary.find((c) => c.server === server && c.scenario === scenario && c.payloadBytes === payload)?.cpuUsPerReq
  const payloads = [...new Set(main.summary.map((c) => c.payloadBytes))].sort((a, b) => a - b)
  const verdict = (ratio, bound) => {
    if (!Number.isFinite(ratio)) return 'not measured'
    const margin = (ratio / bound - 1) * 100
    return margin <= 0 ? `met (${fixed(-margin)}% under)` : `**missed by ${fixed(margin)}%**`
  }
  const compare = (label, ours, other, scenarios, bound) => {
    for (const scenario of scenarios) {
      for (const payload of payloads) {
        const ratio = cpu(ours, scenario, payload) / cpu(other, scenario, payload)
        rows.push([label, `${scenario}, ${payload} B`, `${fixed(ratio, 2)}×`, `≤ ${bound}×`, verdict(ratio, bound)])
      }
    }
  }
  compare('cookie mode vs @fastify/secure-session', 'fastify-sessions-cookie', 'secure-session', ['read', 'write', 'new'], 1)
  compare('cookie mode vs bare Fastify, session untouched', 'fastify-sessions-cookie', 'bare', ['untouched'], 1.05)
  compare('MemoryArchive vs @fastify/session memory store', 'fastify-sessions-memory', 'fastify-session-memory', ['read', 'write', 'new'], 0.8)
  compare('RedisArchive vs @fastify/session + connect-redis', 'fastify-sessions-redis', 'fastify-session-redis', ['read', 'write', 'new'], 0.8)
  compare('FileArchive vs MemoryArchive', 'fastify-sessions-file', 'fastify-sessions-memory', ['read', 'write', 'new'], 1.5)
  if (scaling !== undefined) {
    for (const server of ['fastify-sessions-memory', 'fastify-sessions-redis', 'fastify-sessions-file']) {
      const lines = scaling.scaling.filter((l) => l.scaling === 'archive' && l.server === server && l.skipped === undefined).sort((a, b) => a.sessions - b.sessions)
      if (lines.length < 2) continue
      const first = lines[0]
      const last = lines.at(-1)
      const drop = 1 - last.reqPerSec / first.reqPerSec
      rows.push([`${server}: throughput flat with stored sessions`, `read, ${thousands(first.sessions)} → ${thousands(last.sessions)}`,
        `${drop > 0 ? '−' : '+'}${fixed(Math.abs(drop) * 100, 1)}% req/s`, '≥ −10%', drop <= 0.1 ? 'met' : `**missed by ${fixed((drop - 0.1) * 100, 1)} points**`])
    }
  }
  return table(['target (server CPU per request)', 'scenario', 'figure', 'bound', 'verdict'], ['l', 'l', 'r', 'r', 'l'], rows)
}

function scalingTables (scaling) {
  const servers = orderedServers(new Set(scaling.scaling.map((l) => l.server))).map((s) => s.server)
  const archive = scaling.scaling.filter((l) => l.scaling === 'archive').sort((a, b) => servers.indexOf(a.server) - servers.indexOf(b.server) || a.sessions - b.sessions)
  const cookie = scaling.scaling.filter((l) => l.scaling === 'cookie').sort((a, b) => a.scenario.localeCompare(b.scenario) || a.payloadBytes - b.payloadBytes)
  const parts = []
  if (archive.length > 0) {
    parts.push('Archive mode, reads of sessions drawn at random among those stored (stored directly through the archive):\n\n' + table(
      ['server', 'stored sessions', 'req/s', 'p99 ms', 'CPU µs/req', 'RSS B/session', 'heap B/session', 'Redis B/session', 'populated in s'],
      ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
      archive.map((l) => l.skipped !== undefined
        ? [l.server, thousands(l.sessions), `skipped: ${l.skipped}`, '', '', '', '', '', '']
        : [l.server, thousands(l.sessions), thousands(l.reqPerSec), fixed(l.p99Ms, 1), fixed(l.cpuUsPerReq, 1), fixed(l.rssBytesPerSession),
            fixed(l.heapBytesPerSession), l.redisBytesPerSession === undefined ? '' : fixed(l.redisBytesPerSession), fixed(l.populateSeconds, 1)])
    ))
  }
  if (cookie.length > 0) {
    parts.push('Cookie mode by session size, up to the largest sealed cookie under the 4096-byte limit:\n\n' + table(
      ['scenario', 'session JSON B', 'Cookie header B', 'req/s', 'p99 ms', 'CPU µs/req'],
      ['l', 'r', 'r', 'r', 'r', 'r'],
      cookie.map((l) => [l.scenario, l.payloadBytes, fixed(l.cookieBytes), thousands(l.reqPerSec), fixed(l.p99Ms, 1), fixed(l.cpuUsPerReq, 1)])
    ))
  }
  return parts.join('\n\n')
}

/** The section with its markers; `heading`: it starts with `## Performance`, for a README that has the markers but no heading of its own. */
export function renderReport ({ main, scaling }, { heading = false } = {}) {
  const parts = [
    START,
    ...(heading ? ['## Performance'] : []),
    '_Generated by `node benchmarks/report.js` from the raw results in [`benchmarks/results/`](benchmarks/results/); ' +
      'rerun `npm run bench` (about 30 minutes) to refresh it, `npm run bench:quick` (about 2 minutes) for a sanity check._'
  ]
  if (main !== undefined) {
    const i = main.info
    parts.push(
      'Each server is a separate Node process on 127.0.0.1 with the same routes and payloads; [autocannon](https://github.com/mcollina/autocannon) loads it from the ' +
      `harness process with ${i.connections} connections, ${i.rounds === 1 ? 'one round' : `${i.rounds} rounds (servers in order, then reversed, so drift cancels)`} of ` +
      `${i.duration} s per server and scenario after ${i.warmup} s of warm-up. **CPU µs/req** is the server process's own CPU time divided by the requests it answered: ` +
      'the figure to compare on a machine shared with the load generator. **× bare** is the ratio to bare Fastify in the same round. ' +
      'Scenarios: `untouched` (a valid session cookie, route never reads it), `read`, `write` (read and store a changed value), `new` (no cookie, a session created). ' +
      'Configurations of every library, what each figure means and how to rerun: [benchmarks/README.md](benchmarks/README.md).',
      `Run: ${describeRun(i)}.`,
      '![Server CPU time per request, per scenario and library](benchmarks/results/chart.svg)',
      cpuTables(main),
      '### Targets\n\n' + targets(main, scaling),
      '<details><summary>Every figure of the run: requests per second, p99 latency, CPU, peak RSS, each against bare Fastify</summary>\n\n' + fullTable(main) + '\n\n</details>'
    )
  }
  if (scaling !== undefined) {
    parts.push('### Scaling\n\n' + `Run: ${describeRun(scaling.info)}.\n\n` + scalingTables(scaling))
  }
  parts.push(END)
  return parts.join('\n\n')
}

/** Replaces the section between the markers in README.md (or appends one); returns the README's path. */
export function writeReport () {
  const latest = loadLatest()
  if (latest.main === undefined && latest.scaling === undefined) throw new Error('no results in benchmarks/results/: run `npm run bench` first')
  const readme = readFileSync(README, 'utf8')
  const start = readme.indexOf(START)
  const end = readme.indexOf(END)
  let next
  if (start !== -1 && end > start) {
    const before = readme.slice(0, start)
    // The nearest heading above the markers: the section brings its own unless that one is already `## Performance`.
    const heading = [...before.matchAll(/^#{1,6} .*$/gm)].at(-1)?.[0].trim() !== '## Performance'
    next = before + renderReport(latest, { heading }) + readme.slice(end + END.length)
  } else {
    next = `${readme.replace(/\n*$/, '')}\n\n## Performance\n\n${renderReport(latest)}\n`
  }
  writeFileSync(README, next)
  return fileURLToPath(README)
}

if (process.argv[1] === fileURLToPath(import.meta.url)) console.log(writeReport())
