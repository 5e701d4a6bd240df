// Draws benchmarks/results/chart.svg from the latest main run: server CPU time
// per request, one panel per scenario, one row per server (this plugin's row
// last in each family, so that it sits beside the peers it replaces), one bar
// per payload size. Hand-written SVG, no dependencies.
// Usage: node benchmarks/chart.js
import { writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { loadLatest, orderedServers, RESULTS_DIR, SCENARIO_ORDER } from './latest.js'

const WIDTH = 960
const LABEL = 190
const GAP = 16
const TOP = 92
const BAR = 9
const ROW = 24
const FAMILY_GAP = 14
const COLOURS = { ours: '#0f766e', peer: '#94a3b8', bare: '#334155' }
const FONT = 'font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif"'

const escape = (text) => String(text).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')

function colourOf (cell) {
  if (cell.server === 'bare') return COLOURS.bare
  return cell.ours ? COLOURS.ours : COLOURS.peer
}

/** A round step for the axis: 1, 2 or 5 times a power of ten, about four ticks to the maximum. */
function tickStep (max) {
  const rough = max / 4
  const power = 10 ** Math.floor(Math.log10(rough))
  return [1, 2, 5, 10].map((m) => m * power).find((step) => step >= rough)
}

export function renderChart ({ info, summary }) {
  const servers = orderedServers(new Set(summary.map((cell) => cell.server)))
  const scenarios = SCENARIO_ORDER.filter((scenario) => summary.some((cell) => cell.scenario === scenario))
  const payloads = [...new Set(summary.map((cell) => cell.payloadBytes))].sort((a, b) => a - b)
  const cellOf = (scenario, server, payload) => summary.find((c) => c.scenario === scenario && c.server === server && c.payloadBytes === payload)

  const rowY = []
  let y = TOP
  servers.forEach(({ family }, i) => {
    if (i > 0 && servers[i - 1].family !== family) y += FAMILY_GAP
    rowY.push(y)
    y += ROW
  })
  const height = y + 36
  const panelWidth = (WIDTH - LABEL - GAP * scenarios.length) / scenarios.length
  const out = []
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" ${FONT} font-size="12">`)
  out.push(`<rect width="${WIDTH}" height="${height}" fill="#ffffff"/>`)
  const when = info.run.slice(0, 10)
  out.push('<text x="12" y="22" font-size="15" font-weight="600" fill="#0f172a">Server CPU time per request (µs, lower is better)</text>')
  out.push(`<text x="12" y="40" fill="#475569">${escape(`${when}, Node ${info.machine.node}, ${info.machine.cpus} CPUs, ${info.connections} connections, ` +
    `${info.rounds} round${info.rounds === 1 ? '' : 's'} of ${info.duration} s${info.quick ? ' (quick run)' : ''}; each panel has its own scale`)}</text>`)

  // Legend.
  const legend = [
    ['fastify-sessions', COLOURS.ours, 1], ['other session libraries', COLOURS.peer, 1], ['bare Fastify', COLOURS.bare, 1],
    ...payloads.map((payload, i) => [`${payload} B payload`, '#64748b', i === 0 ? 1 : 0.45])
  ]
  let lx = 12
  for (const [text, colour, opacity] of legend) {
    out.push(`<rect x="${lx}" y="52" width="12" height="12" fill="${colour}" fill-opacity="${opacity}"/>`)
    out.push(`<text x="${lx + 17}" y="62" fill="#334155">${escape(text)}</text>`)
    lx += 17 + Math.ceil(text.length * 6.6) + 18
  }

  // Row labels and family separators.
  servers.forEach(({ server, family }, i) => {
    const ours = server.startsWith('fastify-sessions')
    out.push(`<text x="${LABEL - 8}" y="${rowY[i] + ROW / 2 + 4}" text-anchor="end" fill="${ours ? COLOURS.ours : '#1e293b'}"${ours ? ' font-weight="600"' : ''}>${escape(server)}</text>`)
    if (i > 0 && servers[i - 1].family !== family) {
      const ly = rowY[i] - FAMILY_GAP / 2 - 1
      out.push(`<line x1="12" x2="${WIDTH - 8}" y1="${ly}" y2="${ly}" stroke="#e2e8f0"/>`)
    }
  })

  scenarios.forEach((scenario, s) => {
    const x0 = LABEL + s * (panelWidth + GAP)
    const valueRoom = 34
    const cells = summary.filter((c) => c.scenario === scenario)
    const max = Math.max(...cells.map((c) => c.cpuUsPerReq))
    const step = tickStep(max)
    const top = Math.ceil(max / step) * step
    const scale = (panelWidth - valueRoom) / top
    out.push(`<text x="${x0}" y="${TOP - 10}" font-weight="600" fill="#0f172a">${escape(scenario)}</text>`)
    for (let tick = 0; tick <= top; tick += step) {
      const tx = x0 + tick * scale
      out.push(`<line x1="${tx.toFixed(1)}" x2="${tx.toFixed(1)}" y1="${TOP}" y2="${y}" stroke="#f1f5f9"/>`)
      out.push(`<text x="${tx.toFixed(1)}" y="${y + 14}" text-anchor="middle" font-size="10" fill="#64748b">${tick}</text>`)
    }
    servers.forEach(({ server }, i) => {
      payloads.forEach((payload, p) => {
        const cell = cellOf(scenario, server, payload)
        if (cell === undefined) return
        const by = rowY[i] + 3 + p * (BAR + 1) + (payloads.length === 1 ? (BAR + 1) / 2 : 0)
        const width = Math.max(1, cell.cpuUsPerReq * scale)
        out.push(`<rect x="${x0}" y="${by}" width="${width.toFixed(1)}" height="${BAR}" fill="${colourOf(cell)}" fill-opacity="${p === 0 ? 1 : 0.45}">` +
          `<title>${escape(`${server}, ${scenario}, ${payload} B: ${cell.cpuUsPerReq.toFixed(1)} µs/req (${cell.cpuRatio.toFixed(2)} × bare)`)}</title></rect>`)
        out.push(`<text x="${(x0 + width + 3).toFixed(1)}" y="${by + BAR - 1}" font-size="9" fill="#475569">${Math.round(cell.cpuUsPerReq)}</text>`)
      })
    })
  })
  out.push('</svg>')
  return out.join('\n') + '\n'
}

/** Writes chart.svg from the latest results; returns its path. */
export function writeChart () {
  const { main } = loadLatest()
  if (main === undefined) throw new Error('no results of the main suite in benchmarks/results/: run `npm run bench` first')
  const file = new URL('chart.svg', RESULTS_DIR)
  writeFileSync(file, renderChart(main))
  return fileURLToPath(file)
}

if (process.argv[1] === fileURLToPath(import.meta.url)) console.log(writeChart())
