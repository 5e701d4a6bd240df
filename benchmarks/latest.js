// Reads the results that chart.js and report.js draw from: the latest run of
// the main suite and the latest scaling run, in benchmarks/results/*.jsonl.
// A full run is preferred to a later --quick one, so that a sanity check does
// not replace the published figures.
import { readdirSync, readFileSync } from 'node:fs'

export const RESULTS_DIR = new URL('results/', import.meta.url)

/** Servers as the chart and tables group them: each family's peers, then this plugin. */
export const FAMILIES = [
  { name: 'baseline', servers: ['bare', 'fastify-cookie'] },
  { name: 'sealed cookie', servers: ['secure-session', 'mgcrea-sodium', 'iron-session', 'fastify-sessions-cookie', 'fastify-sessions-cookie-revocable', 'fastify-sessions-cookie-archive', 'fastify-sessions-cookie-chunk'] },
  { name: 'memory store', servers: ['fastify-session-memory', 'mgcrea-memory', 'fastify-sessions-memory', 'fastify-sessions-memory-bound'] },
  { name: 'Redis store', servers: ['fastify-session-redis', 'mgcrea-redis', 'fastify-sessions-redis', 'fastify-sessions-redis-cluster'] },
  { name: 'file store', servers: ['fastify-sessions-file'] }
]

export const SCENARIO_ORDER = ['untouched', 'read', 'repeated', 'write', 'new']

function readLines (dir) {
  const lines = []
  for (const file of readdirSync(dir).filter((name) => name.endsWith('.jsonl')).sort()) {
    for (const text of readFileSync(new URL(file, dir), 'utf8').split('\n')) {
      if (text.trim() === '') continue
      try {
        lines.push(JSON.parse(text))
      } catch {
        // A line cut short by an interrupted run.
      }
    }
  }
  return lines
}

function pick (runs, has) {
  const candidates = [...runs.values()].filter((run) => run.info !== undefined && has(run)).sort((a, b) => a.id.localeCompare(b.id))
  const full = candidates.filter((run) => !run.info.quick)
  return (full.length > 0 ? full : candidates).at(-1)
}

/**
 * `{ main, scaling }`: each `{ info, summary | lines, done }` of the chosen run,
 * or undefined when there is none. Only lines written by this version of run.js
 * (with a `suite`) count.
 */
export function loadLatest (dir = RESULTS_DIR) {
  const runs = new Map()
  for (const line of readLines(dir)) {
    if (typeof line.run !== 'string') continue
    let run = runs.get(line.run)
    if (run === undefined) {
      run = { id: line.run, info: undefined, summary: [], scaling: [], done: undefined }
      runs.set(line.run, run)
    }
    if (line.kind === 'run' && line.machine !== undefined) run.info = line
    else if (line.kind === 'summary' && line.suite === 'main') run.summary.push(line)
    else if (line.kind === 'scaling' && line.suite === 'scaling') run.scaling.push(line)
    else if (line.kind === 'done') run.done = line
  }
  return {
    main: pick(runs, (run) => run.summary.length > 0),
    scaling: pick(runs, (run) => run.scaling.length > 0)
  }
}

export function orderedServers (present) {
  return FAMILIES.flatMap((family) => family.servers.filter((server) => present.has(server)).map((server) => ({ server, family: family.name })))
}
