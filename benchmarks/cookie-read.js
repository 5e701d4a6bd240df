// Where the time of reading a sealed cookie goes, in one process, without
// HTTP: fastify-sessions' Fe26.2 token against @fastify/secure-session's
// libsodium secretbox, on 1,200 distinct cookies of each payload in turn, as
// the miss path meets them (no cookie comes back before 1,199 others).
//
//   npm run build && node benchmarks/cookie-read.js
//
// For each payload: first the whole read of each library, timed alone (µs per
// read, min and median of 15 runs of 24,000 reads, the two interleaved); then
// each read again under the V8 CPU profiler, with its self time per function
// in µs per read, the native calls (SHA-256, AES, base64, UTF-8) by name.
// A function's self time includes what V8 inlined into it: JSON.parse shows
// in parseStoredSession and in secure-session's decode. The profiler costs
// time too, so the profiled rows add up to more than the timed read.
// What the libraries do per read:
// - fastify-sessions: unseal the token (find its eight fields, decode the IV,
//   HMAC-SHA256 over the first six fields, decode and decrypt the ciphertext),
//   JSON.parse the stored form, check its timeouts, and restore its data into
//   the request's session state;
// - secure-session: split the cookie at ';', decode ciphertext and nonce from
//   base64, open the secretbox (XSalsa20-Poly1305) in one libsodium call, and
//   JSON.parse the plaintext buffer.
import { randomBytes } from 'node:crypto'
import { createRequire } from 'node:module'
import { Session } from 'node:inspector'
import { payloadOf } from './bench-server.js'
import { IronSealer } from '../dist/iron-token.js'
import { Codec } from '../dist/codec.js'
import { emptyState, parseStoredSession, restoreSession, timedOut } from '../dist/session.js'

const sodium = createRequire(import.meta.url)('sodium-native')

const COOKIES = 1_200
const RUNS = 15
const PASSES = 20
const PROFILED_PASSES = 400
const OPTIONS = { maxAge: 86_400, absoluteTimeout: 7 * 86_400 }
const quietLog = { warn () {} }

/** `value` as a server receives it: a slice of a flat `Cookie` header string, not the string the sealer built. */
function received (value) {
  return Buffer.from(`theme=dark; session=${value}`).toString('latin1').slice('theme=dark; session='.length)
}

function readers (bytes) {
  const now = Date.now()
  const payload = payloadOf(bytes)
  const sealer = new IronSealer([randomBytes(32).toString('base64url')])
  const stored = JSON.stringify({ c: now, t: now, d: payload })
  const tokens = Array.from({ length: COOKIES }, () => received(sealer.seal(stored, now + 86_400_000)))
  const codec = new Codec()
  const ours = (i) => {
    const unsealed = sealer.unseal(tokens[i], now)
    const session = parseStoredSession(unsealed.json)
    if (timedOut(session, now, OPTIONS) !== undefined) throw new Error('timed out')
    const state = emptyState(tokens[i])
    restoreSession(state, session, codec, quietLog)
    return state.data.user
  }

  const key = randomBytes(32)
  const plain = Buffer.from(JSON.stringify({ ...payload, __ts: Math.round(now / 1000) }))
  const boxes = Array.from({ length: COOKIES }, () => {
    const nonce = randomBytes(sodium.crypto_secretbox_NONCEBYTES)
    const cipher = Buffer.alloc(plain.length + sodium.crypto_secretbox_MACBYTES)
    sodium.crypto_secretbox_easy(cipher, plain, nonce, key)
    return received(`${cipher.toString('base64')};${nonce.toString('base64')}`)
  })
  // As secure-session's decodeSecureSession does it.
  const theirs = (i) => {
    const split = boxes[i].split(';')
    const cipher = Buffer.from(split[0], 'base64')
    const nonce = Buffer.from(split[1], 'base64')
    const message = Buffer.allocUnsafe(cipher.length - sodium.crypto_secretbox_MACBYTES)
    if (!sodium.crypto_secretbox_open_easy(message, cipher, nonce, key)) throw new Error('not opened')
    return JSON.parse(message).user
  }
  for (const read of [ours, theirs]) if (read(0)?.name !== 'Ada Lovelace') throw new Error('the read found no user')
  return { ours, theirs, tokenLength: tokens[0].length, boxLength: boxes[0].length }
}

function timeRuns (reads) {
  const times = Object.fromEntries(Object.keys(reads).map((name) => [name, []]))
  for (let run = -3; run < RUNS; run++) {
    const order = run % 2 === 0 ? Object.keys(reads) : Object.keys(reads).reverse()
    for (const name of order) {
      const read = reads[name]
      const start = process.hrtime.bigint()
      for (let pass = 0; pass < PASSES; pass++) for (let i = 0; i < COOKIES; i++) read(i)
      // The first runs warm up.
      if (run >= 0) times[name].push(Number(process.hrtime.bigint() - start) / 1000 / (PASSES * COOKIES))
    }
  }
  return Object.fromEntries(Object.entries(times).map(([name, list]) => {
    list.sort((a, b) => a - b)
    return [name, { min: list[0], median: list[Math.floor(list.length / 2)] }]
  }))
}

/** What the profiler's names of native code stand for. */
const NATIVE = new Map([
  ['oneShotDigest', 'SHA-256, native (crypto.hash)'],
  ['update', 'AES-256-CBC, native (Decipheriv#update)'],
  ['base64urlWrite', 'base64url decoding, native'],
  ['base64Write', 'base64 decoding, native'],
  ['utf8Write', 'UTF-8 encoding, native'],
  ['utf8Slice', 'UTF-8 decoding, native'],
  ['latin1Write', 'latin1 encoding, native'],
  // sodium-native ships without symbols: the profiler names its code after the nearest symbol it finds.
  ['extension_pbkdf2_sha512_async', 'libsodium, native (crypto_secretbox_open_easy)']
])

function post (session, method, params) {
  return new Promise((resolve, reject) => session.post(method, params, (error, result) => error === null ? resolve(result) : reject(error)))
}

/** Self time per function of `PROFILED_PASSES` passes over the cookies, in µs per read. */
async function profile (read) {
  const session = new Session()
  session.connect()
  await post(session, 'Profiler.enable')
  await post(session, 'Profiler.setSamplingInterval', { interval: 50 })
  await post(session, 'Profiler.start')
  for (let pass = 0; pass < PROFILED_PASSES; pass++) for (let i = 0; i < COOKIES; i++) read(i)
  const { profile } = await post(session, 'Profiler.stop')
  session.disconnect()
  const byNode = new Map()
  for (let i = 0; i < profile.samples.length; i++) byNode.set(profile.samples[i], (byNode.get(profile.samples[i]) ?? 0) + profile.timeDeltas[i])
  const self = new Map()
  for (const node of profile.nodes) {
    const { functionName, url } = node.callFrame
    const file = url === '' ? '' : ` (${url.startsWith('node:') ? url : url.split('/').slice(-1)[0]})`
    const name = (url === '' && NATIVE.get(functionName)) || `${functionName === '' ? '(anonymous)' : functionName}${file}`
    self.set(name, (self.get(name) ?? 0) + (byNode.get(node.id) ?? 0))
  }
  const reads = PROFILED_PASSES * COOKIES
  return [...self].map(([name, us]) => [name, us / reads]).filter(([, us]) => us >= 0.05).sort((a, b) => b[1] - a[1])
}

console.log(`Node ${process.version}; ${COOKIES} distinct cookies per payload, each read once per pass`)
for (const bytes of [53, 1024]) {
  const { ours, theirs, tokenLength, boxLength } = readers(bytes)
  const times = timeRuns({ 'fastify-sessions': ours, 'secure-session': theirs })
  console.log(`\n## ${bytes} B payload: token ${tokenLength} characters, secretbox cookie ${boxLength}`)
  console.log('\n| read | µs min | µs median |\n|---|---:|---:|')
  for (const [name, { min, median }] of Object.entries(times)) console.log(`| ${name} | ${min.toFixed(2)} | ${median.toFixed(2)} |`)
  console.log(`| ratio | ${(times['fastify-sessions'].min / times['secure-session'].min).toFixed(2)} | ${(times['fastify-sessions'].median / times['secure-session'].median).toFixed(2)} |`)
  for (const [name, read] of [['fastify-sessions', ours], ['secure-session', theirs]]) {
    const rows = await profile(read)
    const total = rows.reduce((sum, [, us]) => sum + us, 0)
    console.log(`\n${name}, self time under the profiler (µs per read; ${total.toFixed(2)} in the rows shown):\n`)
    for (const [fn, us] of rows) console.log(`  ${us.toFixed(2).padStart(6)}  ${fn}`)
  }
}
