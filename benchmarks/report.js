// Writes the figures of the latest run into benchmarks/README.md, between
// `<!-- bench:start -->` and `<!-- bench:end -->`, from the latest results:
// every number in it comes from benchmarks/results/, none is copied by hand.
// Without the markers, a `## Figures of the latest run` section holding them
// is appended at the end.
// Usage: node benchmarks/report.js
import { readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { loadLatest, orderedServers, SCENARIO_ORDER } from './latest.js'

const START = '<!-- bench:start -->'
const END = '<!-- bench:end -->'
const README = new URL('README.md', import.meta.url)
const HEADING = '## Figures of the latest run'

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

/** The section with its markers; `heading`: it starts with its own heading, for a README that has the markers but no heading of its own. */
export function renderReport ({ main, scaling }, { heading = false } = {}) {
  const parts = [
    START,
    ...(heading ? [HEADING] : []),
    '_Generated by `node benchmarks/report.js` from the raw results in [`results/`](results/); ' +
      'rerun `npm run bench` (about 30 minutes) to refresh it, `npm run bench:quick` (about 2 minutes) for a sanity check._'
  ]
  if (main !== undefined) {
    const i = main.info
    parts.push(
      'Each server is a separate Node process on 127.0.0.1 with the same routes and payloads; [autocannon](https://github.com/mcollina/autocannon) loads it from the ' +
      `harness process with ${i.connections} connections, ${i.rounds === 1 ? 'one round' : `${i.rounds} rounds (servers in order, then reversed, so drift cancels)`} of ` +
      `${i.duration} s per server and scenario after ${i.warmup} s of warm-up. **CPU µs/req** is the server process's own CPU time divided by the requests it answered: ` +
      'the figure to compare on a machine shared with the load generator. **× bare** is the ratio to bare Fastify in the same round. ' +
      'Scenarios: `untouched` (a valid session cookie, route never reads it), `read`, `repeated` (`read` with one cookie on every request, as one browser sends it), ' +
      '`write` (read and store a changed value), `new` (no cookie, a session created); ' +
      'the configuration of every library and what each figure means are described above.',
      `Run: ${describeRun(i)}.`,
      '![Server CPU time per request, per scenario and library](results/chart.svg)',
      cpuTables(main),
      '<details><summary>Every figure of the run: requests per second, p99 latency, CPU, peak RSS, each against bare Fastify</summary>\n\n' + fullTable(main) + '\n\n</details>'
    )
  }
  if (scaling !== undefined) {
    parts.push('### Scaling\n\n' + `Run: ${describeRun(scaling.info)}.\n\n` + scalingTables(scaling))
  }
  parts.push(END)
  return parts.join('\n\n')
}

/** Where `marker` stands alone on a line, from `from` on; -1 when it does not. */
function lineOf (text, marker, from = 0) {
  for (let at = text.indexOf(marker, Math.max(from, 0)); at !== -1; at = text.indexOf(marker, at + 1)) {
    const end = at + marker.length
    if ((at === 0 || text[at - 1] === '\n') && (end === text.length || text[end] === '\n')) return at
  }
  return -1
}

/** Replaces the section between the markers in benchmarks/README.md (or appends one); returns that file's path. */
export function writeReport () {
  const latest = loadLatest()
  if (latest.main === undefined && latest.scaling === undefined) throw new Error('no results in benchmarks/results/: run `npm run bench` first')
  const readme = readFileSync(README, 'utf8')
  // Markers on lines of their own: the page may also name them in its text.
  const start = lineOf(readme, START)
  const end = lineOf(readme, END, start)
  let next
  if (start !== -1 && end > start) {
    const before = readme.slice(0, start)
    // The nearest heading above the markers: the section brings its own unless that one is already HEADING.
    const heading = [...before.matchAll(/^#{1,6} .*$/gm)].at(-1)?.[0].trim() !== HEADING
    next = before + renderReport(latest, { heading }) + readme.slice(end + END.length)
  } else {
    next = `${readme.replace(/\n*$/, '')}\n\n${HEADING}\n\n${renderReport(latest)}\n`
  }
  writeFileSync(README, next)
  return fileURLToPath(README)
}

if (process.argv[1] === fileURLToPath(import.meta.url)) console.log(writeReport())
