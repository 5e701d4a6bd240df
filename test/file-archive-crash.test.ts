import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import * as fsp from 'node:fs/promises'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { FileArchive } from '../lib/archives/file.js'
import { advanceClock } from './helpers/clock.js'
import { tempDir } from './helpers/temp-dir.js'

// Writers in child processes, running the built package: killed with SIGKILL
// at random moments, or racing each other on one directory. What must hold:
// every session.json is a complete value some writer wrote, never a mix or a
// prefix; temp files are never read as sessions and the sweep removes the
// stale ones; and between processes the last rename wins.

const root = fileURLToPath(new URL('..', import.meta.url))
const entry = new URL('../dist/archives/file.js', import.meta.url).href
const KILLS = 20
const HOUR = 3_600_000

// Values of 1 KB to 200 KB, so that a kill often lands inside a write.
const writer = `
import { writeSync } from 'node:fs'
import { FileArchive } from ${JSON.stringify(entry)}
const [dir, name, base, ids, rounds] = process.argv.slice(1)
const archive = new FileArchive({ dir, sweepIntervalMs: 0 })
const say = (line) => writeSync(1, line + '\\n')
await Promise.all(ids.split(',').map(async (id) => {
  for (let seq = Number(base); seq < Number(base) + Number(rounds); seq++) {
    const pad = 'x'.repeat(1000 + (seq % 50) * 4000)
    say('S ' + id + ' ' + seq)
    await archive.set(id, 'session', JSON.stringify({ c: 1, t: seq, d: { writer: name, seq, pad } }), ${HOUR})
    say('D ' + id + ' ' + seq)
  }
}))
say('END')
`

interface Progress { started: Map<string, number>, done: Map<string, number>, ended: boolean }

/** Starts a writer; `progress` follows what it reported on its (synchronous) stdout. */
function startWriter (dir: string, name: string, base: number, ids: string[], rounds: number) {
  const child = spawn(process.execPath, ['--input-type=module', '-e', writer, dir, name, String(base), ids.join(','), String(rounds)],
    { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] })
  const progress: Progress = { started: new Map(), done: new Map(), ended: false }
  let buffered = ''
  let firstDone: () => void
  const working = new Promise<void>((resolve) => { firstDone = resolve })
  child.stdout.setEncoding('utf8')
  child.stdout.on('data', (chunk: string) => {
    buffered += chunk
    const lines = buffered.split('\n')
    buffered = lines.pop() as string
    for (const line of lines) {
      const [kind, id, seq] = line.split(' ') as [string, string, string]
      if (kind === 'END') progress.ended = true
      else (kind === 'S' ? progress.started : progress.done).set(id, Number(seq))
      if (kind === 'D') firstDone()
    }
  })
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal }))
  })
  return { child, progress, working, exited }
}

interface Stored { writer: string, seq: number }

/** A session.json's content, checked to be whole: JSON of the shape and the size its seq gives it. */
function parseWhole (text: string): Stored | undefined {
  try {
    const value = JSON.parse(text) as { t: number, d: { writer: string, seq: number, pad: string } }
    if (value.t !== value.d.seq || value.d.pad.length !== 1000 + (value.d.seq % 50) * 4000) return undefined
    return { writer: value.d.writer, seq: value.d.seq }
  } catch {
    return undefined
  }
}

function newIds (count: number): string[] {
  return Array.from({ length: count }, () => randomBytes(16).toString('base64url'))
}

t.test(`SIGKILL at random moments, ${KILLS} times: every session.json is a complete old or new value`, async (t) => {
  const dir = path.join(await tempDir(t), 'sessions')
  const ids = newIds(6)
  const archive = new FileArchive({ dir, sweepIntervalMs: 0 })
  t.teardown(() => archive.close())
  const last = new Map<string, number>()
  let landedMidWrite = 0

  for (let kill = 0; kill < KILLS; kill++) {
    const { child, progress, working, exited } = startWriter(dir, 'w', kill * 1_000_000, ids, 1_000_000)
    await working
    await sleep(Math.floor(Math.random() * 60))
    child.kill('SIGKILL')
    const { signal } = await exited
    t.equal(signal, 'SIGKILL', `kill ${kill}: the writer was killed, not finished`)

    for (const id of ids) {
      const text = await archive.get(id, 'session')
      const allowed = [progress.done.get(id), progress.started.get(id)]
      if (progress.done.get(id) === undefined) allowed.push(last.get(id))
      if (text === undefined) {
        t.ok(progress.done.get(id) === undefined && last.get(id) === undefined, `kill ${kill}: ${id} is absent only if no write of it ever finished`)
        continue
      }
      const stored = parseWhole(text)
      t.ok(stored !== undefined, `kill ${kill}: ${id} holds a complete value`)
      t.ok(allowed.includes(stored?.seq), `kill ${kill}: ${id} holds the last finished value or the one being written (${stored?.seq} of ${allowed.join(', ')})`)
      if (stored?.seq === progress.started.get(id) && stored?.seq !== progress.done.get(id)) landedMidWrite++
      last.set(id, stored!.seq)
    }
  }
  t.comment(`${landedMidWrite} kills landed between a rename and its report`)

  const names = (await Promise.all(ids.map(async (id) => (await fsp.readdir(path.join(dir, id)).catch(() => [])).map((name) => `${id}/${name}`)))).flat()
  const temps = names.filter((name) => !name.endsWith('/session.json'))
  t.ok(temps.every((name) => /\/\.session\.[0-9a-f]{16}\.tmp$/.test(name)), 'nothing but session.json and temp files of interrupted writes')
  t.comment(`${temps.length} temp files were left by killed writes`)
  for (const id of ids) {
    const file = path.join(dir, id, 'session.json')
    const onDisk = await fsp.readFile(file, 'utf8').catch(() => undefined)
    t.equal(await archive.get(id, 'session'), onDisk, `${id}: the archive reads session.json, never a temp file`)
    t.equal(await archive.hasDomain(id), onDisk !== undefined, `${id}: a domain holding only temp files does not exist`)
  }

  t.equal(await archive.sweep(), 0, 'a sweep now removes no session')
  t.same((await Promise.all(ids.map((id) => fsp.readdir(path.join(dir, id)).catch(() => [])))).flat().length, names.length,
    'and no temp file younger than a minute: it may belong to a live write')
  advanceClock(t, 61_000)
  await archive.sweep()
  const after = (await Promise.all(ids.map(async (id) => (await fsp.readdir(path.join(dir, id)).catch(() => [])).map((name) => `${id}/${name}`)))).flat()
  t.same(after.sort(), names.filter((name) => name.endsWith('/session.json')).sort(), 'a minute on, the sweep removes every temp file and keeps every session')
})

t.test('two processes writing the same sessions at once: each file always whole, the last rename wins, nothing lost', async (t) => {
  const dir = path.join(await tempDir(t), 'sessions')
  const shared = newIds(4)
  const onlyA = newIds(2)
  const archive = new FileArchive({ dir, sweepIntervalMs: 0 })
  t.teardown(() => archive.close())
  // Each session exists before the race: a new id is only ever written by the process that made it.
  for (const id of [...shared, ...onlyA]) await archive.set(id, 'session', JSON.stringify({ c: 1, t: 0, d: { writer: 'setup', seq: 0, pad: 'x'.repeat(1000) } }), HOUR)

  const rounds = 25
  const a = startWriter(dir, 'a', 1000, [...shared, ...onlyA], rounds)
  const b = startWriter(dir, 'b', 2000, shared, rounds)
  let reads = 0
  let torn = 0
  const seen = new Set<string>()
  const race = { running: 2 }
  for (const { exited } of [a, b]) exited.then(() => { race.running-- }, () => { race.running-- })
  while (race.running > 0) {
    for (const id of shared) {
      const text = await archive.get(id, 'session')
      const stored = text === undefined ? undefined : parseWhole(text)
      reads++
      if (stored === undefined) torn++
      else seen.add(stored.writer)
    }
    await sleep(1)
  }
  t.same(await a.exited, { code: 0, signal: null }, 'writer a finished without an error')
  t.same(await b.exited, { code: 0, signal: null }, 'writer b finished without an error')
  t.equal(torn, 0, `none of ${reads} reads during the race saw a missing or partial value`)
  t.ok(seen.size >= 1, `reads saw values of ${[...seen].join(' and ')}`)

  for (const id of shared) {
    const stored = parseWhole(await archive.get(id, 'session') as string)
    t.ok(stored !== undefined && ((stored.writer === 'a' && stored.seq === 1000 + rounds - 1) || (stored.writer === 'b' && stored.seq === 2000 + rounds - 1)),
      `${id} holds one writer's final value, whole (${stored?.writer} ${stored?.seq})`)
  }
  for (const id of onlyA) t.same(parseWhole(await archive.get(id, 'session') as string), { writer: 'a', seq: 1000 + rounds - 1 }, `${id}, written by a alone, holds a's final value`)
  const leftovers = (await Promise.all([...shared, ...onlyA].map((id) => fsp.readdir(path.join(dir, id))))).flat().filter((name) => name !== 'session.json')
  t.same(leftovers, [], 'writers that finish leave no temp file')

  const late = startWriter(dir, 'b', 3000, shared.slice(0, 1), 1)
  t.same(await late.exited, { code: 0, signal: null })
  t.same(parseWhole(await archive.get(shared[0]!, 'session') as string), { writer: 'b', seq: 3000 }, 'a write after the others is what is read')
})
