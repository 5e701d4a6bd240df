// What each way of writing a small file costs on a disk: the floor under
// FileArchive's writes, and under the layouts it could have instead. Not a
// measure of the archive itself: the same calls it makes, in a loop, without it.
//
//   node benchmarks/file-writes.js [dir ...]   (default: the temp dir, and /dev/shm where it exists)
//
// For each directory, 200 sessions' directories each holding a session.json,
// and then, for each way, WRITES writes spread over them, twice in turn; CPU µs
// per write (user + system, from process.cpuUsage) and wall µs.
import { randomBytes } from 'node:crypto'
import { closeSync, constants, existsSync, fstatSync, futimesSync, ftruncateSync, linkSync, lstatSync, mkdirSync, mkdtempSync, openSync, renameSync, rmSync, unlinkSync, utimesSync, writeFileSync, writeSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'

const WRITES = 2000
const SESSIONS = 200
const ROUNDS = 2
// A 53-byte session's stored text is about 200 bytes, with its timestamps.
const VALUE = JSON.stringify({ c: 1_767_225_600_000, t: 1_767_225_600_000, d: { user: { id: '42', name: 'Ada Lovelace' }, visits: 3, note: 'n'.repeat(90) } })
const { O_APPEND, O_CREAT, O_DIRECTORY, O_EXCL, O_NOFOLLOW, O_RDONLY, O_WRONLY } = constants
const expiry = () => Date.now() / 1000 + 86_400

/** The ways, each a write of VALUE to the session in `dir`. */
const WAYS = [
  {
    name: 'temp file + rename (FileArchive)',
    note: 'a new file per write, renamed over session.json: a crash leaves the old or the new version, and a reader in any process sees one whole version',
    write (dir) {
      const temp = path.join(dir, `.session.${randomBytes(8).toString('hex')}.tmp`)
      const fd = openSync(temp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600)
      writeSync(fd, VALUE)
      futimesSync(fd, expiry(), expiry())
      renameSync(temp, path.join(dir, 'session.json'))
      closeSync(fd)
    }
  },
  {
    name: 'lock: link + lstat + unlink (FileArchive)',
    note: 'the cross-process lock each write takes: a holder file linked to the lock name, checked and removed',
    setup (base) { writeFileSync(path.join(base, '.holder'), 'holder') },
    write (dir) {
      const holder = path.join(path.dirname(dir), '.holder')
      const lock = `${dir}.lock`
      utimesSync(holder, expiry(), expiry())
      linkSync(holder, lock)
      lstatSync(lock)
      unlinkSync(lock)
    }
  },
  {
    name: 'open the session directory (FileArchive)',
    note: 'the directory handle every write and read goes through, checked by fstat',
    write (dir) {
      const fd = openSync(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW)
      fstatSync(fd)
      closeSync(fd)
    }
  },
  {
    name: 'spare file rewritten + rename',
    note: 'no new inode: the replaced file becomes the next spare. Not safe: a reader in another process that opened it before the rename may read it while it is rewritten',
    write (dir) {
      const a = path.join(dir, '.a.spare')
      const b = path.join(dir, '.b.spare')
      const [spare, next] = existsSync(a) ? [a, b] : [b, a]
      const fd = openSync(spare, O_WRONLY | O_CREAT | O_NOFOLLOW, 0o600)
      writeSync(fd, VALUE, 0)
      ftruncateSync(fd, Buffer.byteLength(VALUE))
      futimesSync(fd, expiry(), expiry())
      linkSync(path.join(dir, 'session.json'), next)
      renameSync(spare, path.join(dir, 'session.json'))
      closeSync(fd)
    }
  },
  {
    name: 'append a record',
    note: 'session.json as a log of records: no new inode, but a file that is not the session\'s JSON, and still a lock for a compare-and-set',
    write (dir) {
      const fd = openSync(path.join(dir, 'records'), O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW, 0o600)
      writeSync(fd, VALUE)
      closeSync(fd)
    }
  },
  {
    name: 'rewrite in place',
    note: 'the floor, and not crash safe: a process killed mid-write leaves half a session',
    write (dir) {
      const fd = openSync(path.join(dir, 'session.json'), O_WRONLY | O_NOFOLLOW)
      writeSync(fd, VALUE, 0)
      ftruncateSync(fd, Buffer.byteLength(VALUE))
      futimesSync(fd, expiry(), expiry())
      closeSync(fd)
    }
  }
]

function measure (base, way) {
  const dirs = Array.from({ length: SESSIONS }, (_, i) => path.join(base, `session-${i}`))
  const cpu = process.cpuUsage()
  const started = performance.now()
  for (let i = 0; i < WRITES; i++) way.write(dirs[i % SESSIONS])
  const used = process.cpuUsage(cpu)
  return { cpu: (used.user + used.system) / WRITES, system: used.system / WRITES, wall: (performance.now() - started) * 1000 / WRITES }
}

function run (where) {
  const base = mkdtempSync(path.join(where, 'fastify-sessions-file-writes-'))
  try {
    for (let i = 0; i < SESSIONS; i++) {
      mkdirSync(path.join(base, `session-${i}`), { mode: 0o700 })
      writeFileSync(path.join(base, `session-${i}`, 'session.json'), VALUE, { mode: 0o600 })
    }
    for (const way of WAYS) way.setup?.(base)
    const figures = new Map(WAYS.map((way) => [way, []]))
    for (let round = 0; round < ROUNDS; round++) {
      for (const way of WAYS) figures.get(way).push(measure(base, way))
    }
    const range = (list, key) => {
      const values = list.map((figure) => Math.round(figure[key]))
      const low = Math.min(...values)
      const high = Math.max(...values)
      return low === high ? String(low) : `${low}-${high}`
    }
    console.log(`\n${where}\n\n| way | CPU µs per write | of it, system | wall µs |\n|---|---:|---:|---:|`)
    for (const way of WAYS) {
      const list = figures.get(way)
      console.log(`| ${way.name} | ${range(list, 'cpu')} | ${range(list, 'system')} | ${range(list, 'wall')} |`)
    }
  } finally {
    rmSync(base, { recursive: true, force: true })
  }
}

const wheres = process.argv.slice(2)
if (wheres.length === 0) wheres.push(os.tmpdir(), ...(existsSync('/dev/shm') ? ['/dev/shm'] : []))
console.log(`${WRITES} writes of ${Buffer.byteLength(VALUE)} bytes over ${SESSIONS} sessions, ${ROUNDS} rounds; Node ${process.version}`)
for (const way of WAYS) console.log(`- ${way.name}: ${way.note}`)
for (const where of wheres) run(where)
