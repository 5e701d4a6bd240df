import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { pathToFileURL } from 'node:url'
import type { Archive } from './archives/archive.js'

/** One check of the archive contract, runnable under any test runner. */
export interface ConformanceCase {
  name: string
  run: () => Promise<void>
}

/** A fresh domain name shaped like a session id: 16 random bytes, URL-safe base64. */
function newDomain (): string {
  return randomBytes(16).toString('base64url')
}

/** How the cross-process cases of `archiveConformance` make archives that share one store. */
export interface ConformanceProcesses {
  /**
   * A module (file URL, or absolute path) whose default export takes a place
   * and makes an archive there: `export default (place) => new MyArchive(...)`.
   * Child processes (`node`) import it, so it must be plain JavaScript that
   * Node loads without a loader, and may not rely on the test's memory.
   */
  module: string | URL
  /**
   * Called once per case; what it returns is given to every archive of that
   * case, in this process and in the children: a fresh directory for a file
   * archive, a key prefix for a Redis one.
   */
  place: () => string | Promise<string>
}

/** Options of `archiveConformance`. */
export interface ConformanceOptions {
  /**
   * Adds cases that run two or more real processes on one store: concurrent
   * `compareAndSet` increments from several processes are all counted; a
   * `compareAndSet` loop never revives a domain another process removed; and
   * writes and removals racing across processes never fail. They need
   * `compareAndSet`; each takes a second or two.
   * @default undefined (no cross-process cases)
   */
  processes?: ConformanceProcesses
}

// A child's work: makes its archive from the module, runs one job, prints the result as JSON.
const CHILD = `
const [module, place, job, input] = process.argv.slice(1)
const archive = await (await import(module)).default(place)
const { domains, rounds } = JSON.parse(input)
const jobs = {
  async increment () {
    const domain = domains[0]
    let retries = 0
    for (let done = 0; done < rounds;) {
      const current = await archive.get(domain, 'counter')
      if (await archive.compareAndSet(domain, 'counter', current, String(Number(current) + 1))) done++
      else retries++
    }
    return { retries }
  },
  async reviseUntilGone () {
    let revised = 0
    await Promise.all(domains.map(async (domain) => {
      for (let round = 0; round < rounds; round++) {
        const current = await archive.get(domain, 'session')
        if (current === undefined) return
        if (await archive.compareAndSet(domain, 'session', current, String(Number(current) + 1))) revised++
      }
    }))
    return { revised }
  },
  async removeAll () {
    await Promise.all(domains.map(async (domain, index) => {
      // Once the other process is writing this domain (its value moved on), remove it.
      while (await archive.get(domain, 'session') === '0') await new Promise((resolve) => setTimeout(resolve, 1))
      await new Promise((resolve) => setTimeout(resolve, index % 7))
      await archive.removeDomain(domain)
    }))
    return {}
  },
  async churn () {
    const failures = []
    const steps = [
      (domain) => archive.set(domain, 'session', 'x'.repeat(2000)),
      (domain) => archive.set(domain, 'other', 'y', 60000),
      (domain) => archive.remove(domain, 'session'),
      (domain) => archive.removeDomain(domain),
      async (domain) => archive.compareAndSet(domain, 'session', await archive.get(domain, 'session'), 'z'),
      (domain) => archive.hasDomain(domain)
    ]
    for (let round = 0; round < rounds; round++) {
      await Promise.all(domains.map((domain, index) => steps[(round + index * 3) % steps.length](domain).catch((error) => {
        failures.push(String(error.code) + ' ' + JSON.stringify(error.cause ?? null))
      })))
    }
    return { failures }
  }
}
const result = await jobs[job]()
await archive.close?.()
console.log(JSON.stringify(result))
`

interface ChildInput { domains: string[], rounds: number }

/** Runs `job` in a child process on an archive made by `module` at `place`; resolves its result. */
async function inChild<T> (module: string, place: string, job: string, input: ChildInput): Promise<T> {
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile(process.execPath, ['--input-type=module', '-e', CHILD, module, place, job, JSON.stringify(input)], { maxBuffer: 1 << 24 }, (error, stdout, stderr) => {
      if (error === null) resolve(stdout)
      else reject(new Error(`the child running ${job} failed: ${stderr}`))
    })
  })
  return JSON.parse(stdout.trim().split('\n').pop() as string) as T
}

function processCases (processes: ConformanceProcesses): ConformanceCase[] {
  const module = processes.module instanceof URL || /^[a-z]+:/.test(processes.module)
    ? String(processes.module)
    : pathToFileURL(processes.module).href
  const check = (name: string, body: (archive: Archive, place: string) => Promise<void>): ConformanceCase => ({
    name,
    async run () {
      const place = await processes.place()
      const made = await (await import(module) as { default: (place: string) => Archive | Promise<Archive> }).default(place)
      try {
        assert.equal(typeof made.compareAndSet, 'function', 'an archive shared by processes implements compareAndSet')
        await body(made, place)
      } finally {
        await made.close?.()
      }
    }
  })

  return [
    check('compareAndSet increments from two processes and this one are all counted', async (archive, place) => {
      const domain = newDomain()
      const rounds = 40
      await archive.set(domain, 'counter', '0')
      const here = (async () => {
        for (let done = 0; done < rounds;) {
          const current = await archive.get(domain, 'counter')
          if (await archive.compareAndSet!(domain, 'counter', current, String(Number(current) + 1))) done++
        }
      })()
      await Promise.all([
        inChild(module, place, 'increment', { domains: [domain], rounds }),
        inChild(module, place, 'increment', { domains: [domain], rounds }),
        here
      ])
      assert.equal(await archive.get(domain, 'counter'), String(3 * rounds), 'every increment is counted once')
    }),

    check('a compareAndSet loop in one process never revives a domain that another process removed', async (archive, place) => {
      const domains = Array.from({ length: 20 }, newDomain)
      for (const domain of domains) await archive.set(domain, 'session', '0')
      const [revising] = await Promise.all([
        inChild<{ revised: number }>(module, place, 'reviseUntilGone', { domains, rounds: 2000 }),
        inChild(module, place, 'removeAll', { domains, rounds: 0 })
      ])
      assert.ok(revising.revised > 0, 'the sessions were being written while they were removed')
      for (const domain of domains) {
        assert.equal(await archive.hasDomain(domain), false, 'a removed domain stays removed')
        assert.equal(await archive.get(domain, 'session'), undefined)
      }
    }),

    check('writes and removals racing from two processes never fail, and leave each domain whole or gone', async (archive, place) => {
      const domains = Array.from({ length: 6 }, newDomain)
      const results = await Promise.all([0, 1].map(() => inChild<{ failures: string[] }>(module, place, 'churn', { domains, rounds: 60 })))
      assert.deepEqual(results.flatMap((result) => result.failures), [], 'no call failed')
      for (const domain of domains) {
        const value = await archive.get(domain, 'session')
        assert.ok([undefined, 'z', 'x'.repeat(2000)].includes(value), 'a value some process wrote, whole')
      }
    })
  ]
}

/**
 * The checks every archive in this package passes, for checking your own.
 * Each case makes its own archive with `makeArchive`, uses fresh random domain
 * names, closes the archive when done and throws (`node:assert`) on failure.
 * The ttl cases wait about 150 ms. With `options.processes`, cases that run
 * real child processes on one store are added (see `ConformanceOptions`).
 *
 * @example
 * ```ts
 * import t from 'tap'
 * import { archiveConformance } from 'fastify-sessions/testing'
 *
 * for (const { name, run } of archiveConformance(() => new MyArchive())) t.test(name, run)
 *
 * // Several processes on one store: my-archive-at.js holds
 * // `export default (place) => new MyArchive({ prefix: place })`
 * const processes = { module: new URL('./my-archive-at.js', import.meta.url), place: () => `test-${Date.now()}:` }
 * for (const { name, run } of archiveConformance(() => new MyArchive(), { processes })) t.test(name, run)
 * ```
 */
export function archiveConformance (makeArchive: () => Archive | Promise<Archive>, options: ConformanceOptions = {}): ConformanceCase[] {
  const check = (name: string, body: (archive: Archive) => Promise<void>): ConformanceCase => ({
    name,
    async run () {
      const archive = await makeArchive()
      try {
        await body(archive)
      } finally {
        await archive.close?.()
      }
    }
  })

  return [
    check('a value that was set is returned by get, and has is true', async (archive) => {
      const domain = newDomain()
      await archive.set(domain, 'session', '{"a":1}')
      assert.equal(await archive.get(domain, 'session'), '{"a":1}')
      assert.equal(await archive.has(domain, 'session'), true)
    }),

    check('a key that was never set is undefined and not had, in a missing or an existing domain', async (archive) => {
      const domain = newDomain()
      assert.equal(await archive.get(domain, 'session'), undefined)
      assert.equal(await archive.has(domain, 'session'), false)
      await archive.set(domain, 'session', 'x')
      assert.equal(await archive.get(domain, 'other'), undefined)
      assert.equal(await archive.has(domain, 'other'), false)
    }),

    check('set replaces the value', async (archive) => {
      const domain = newDomain()
      await archive.set(domain, 'session', 'first')
      await archive.set(domain, 'session', 'second')
      assert.equal(await archive.get(domain, 'session'), 'second')
    }),

    check('remove deletes the key; removing a missing key or a key of a missing domain resolves', async (archive) => {
      const domain = newDomain()
      await archive.set(domain, 'session', 'x')
      await archive.remove(domain, 'session')
      assert.equal(await archive.get(domain, 'session'), undefined)
      assert.equal(await archive.has(domain, 'session'), false)
      await archive.remove(domain, 'session')
      await archive.remove(newDomain(), 'session')
    }),

    check('values are kept exactly: empty, unicode, JSON with whitespace, 100 KB', async (archive) => {
      const domain = newDomain()
      const values = {
        empty: '',
        unicode: 'Grüße, 東京, emoji 🎉, combining e\u0301, RTL שלום',
        json: JSON.stringify({ a: [1, 'two', null], nested: { 'key with spaces': '\n\t"' } }, null, 2) + '\n',
        large: 'x'.repeat(50_000) + 'é'.repeat(25_000)
      }
      for (const [key, value] of Object.entries(values)) await archive.set(domain, key, value)
      for (const [key, value] of Object.entries(values)) assert.equal(await archive.get(domain, key), value, key)
      assert.equal(await archive.has(domain, 'empty'), true, 'an empty value is still a key')
    }),

    check('two domains are independent', async (archive) => {
      const one = newDomain()
      const two = newDomain()
      await archive.set(one, 'session', 'one')
      await archive.set(two, 'session', 'two')
      assert.equal(await archive.get(one, 'session'), 'one')
      assert.equal(await archive.get(two, 'session'), 'two')
      await archive.removeDomain(one)
      assert.equal(await archive.get(one, 'session'), undefined)
      assert.equal(await archive.get(two, 'session'), 'two')
      assert.equal(await archive.hasDomain(two), true)
    }),

    check('the keys of one domain are independent', async (archive) => {
      const domain = newDomain()
      await archive.set(domain, 'a', '1')
      await archive.set(domain, 'b', '2')
      assert.equal(await archive.get(domain, 'a'), '1')
      assert.equal(await archive.get(domain, 'b'), '2')
      await archive.remove(domain, 'a')
      assert.equal(await archive.get(domain, 'a'), undefined)
      assert.equal(await archive.get(domain, 'b'), '2')
    }),

    check('a domain exists while it holds a key and not after its last key is removed', async (archive) => {
      const domain = newDomain()
      assert.equal(await archive.hasDomain(domain), false)
      await archive.set(domain, 'a', '1')
      await archive.set(domain, 'b', '2')
      assert.equal(await archive.hasDomain(domain), true)
      await archive.remove(domain, 'a')
      assert.equal(await archive.hasDomain(domain), true)
      await archive.remove(domain, 'b')
      assert.equal(await archive.hasDomain(domain), false)
    }),

    check('removeDomain removes every key of the domain', async (archive) => {
      const domain = newDomain()
      await archive.set(domain, 'a', '1')
      await archive.set(domain, 'b', '2', 60_000)
      await archive.removeDomain(domain)
      assert.equal(await archive.hasDomain(domain), false)
      assert.equal(await archive.get(domain, 'a'), undefined)
      assert.equal(await archive.has(domain, 'b'), false)
    }),

    check('removeDomain of a missing domain resolves', async (archive) => {
      const domain = newDomain()
      await archive.removeDomain(domain)
      assert.equal(await archive.hasDomain(domain), false)
    }),

    check('a key with a ttl is gone after it, and its domain too when it was the last key', async (archive) => {
      const domain = newDomain()
      await archive.set(domain, 'session', 'short', 50)
      assert.equal(await archive.get(domain, 'session'), 'short', 'alive before its ttl')
      await sleep(150)
      assert.equal(await archive.has(domain, 'session'), false)
      assert.equal(await archive.get(domain, 'session'), undefined)
      assert.equal(await archive.hasDomain(domain), false)
    }),

    check('a domain whose keys all expired does not exist, without any read of its keys', async (archive) => {
      const domain = newDomain()
      await archive.set(domain, 'a', '1', 50)
      await archive.set(domain, 'b', '2', 50)
      await sleep(150)
      assert.equal(await archive.hasDomain(domain), false)
    }),

    check('setting a key again gives it the new ttl', async (archive) => {
      const domain = newDomain()
      await archive.set(domain, 'renewed', 'first', 50)
      await archive.set(domain, 'renewed', 'second', 60_000)
      await archive.set(domain, 'late', 'first', 50)
      await sleep(150)
      assert.equal(await archive.get(domain, 'renewed'), 'second', 'a longer ttl replaces a shorter one')
      assert.equal(await archive.get(domain, 'late'), undefined)
      await archive.set(domain, 'late', 'again', 60_000)
      assert.equal(await archive.get(domain, 'late'), 'again', 'an expired key set again lives')
      await archive.set(domain, 'shortened', 'long', 60_000)
      await archive.set(domain, 'shortened', 'short', 50)
      await sleep(150)
      assert.equal(await archive.get(domain, 'shortened'), undefined, 'a shorter ttl replaces a longer one')
    }),

    check('a key without ttl stays while a key with one expires', async (archive) => {
      const domain = newDomain()
      await archive.set(domain, 'kept', 'forever')
      await archive.set(domain, 'brief', 'soon gone', 50)
      await sleep(150)
      assert.equal(await archive.get(domain, 'kept'), 'forever')
      assert.equal(await archive.has(domain, 'brief'), false)
      assert.equal(await archive.hasDomain(domain), true)
      await archive.set(domain, 'brief', 'was ttl', 50)
      await archive.set(domain, 'brief', 'now kept')
      await sleep(150)
      assert.equal(await archive.get(domain, 'brief'), 'now kept', 'setting without ttl clears an earlier ttl')
    }),

    check('50 concurrent sets of different keys in one domain all survive', async (archive) => {
      const domain = newDomain()
      const keys = Array.from({ length: 50 }, (_, index) => `key-${index}`)
      await Promise.all(keys.map((key) => archive.set(domain, key, `value of ${key}`)))
      for (const key of keys) assert.equal(await archive.get(domain, key), `value of ${key}`, key)
    }),

    check('set after removeDomain creates a fresh domain without the old keys', async (archive) => {
      const domain = newDomain()
      await archive.set(domain, 'old', '1')
      await archive.removeDomain(domain)
      await archive.set(domain, 'new', '2')
      assert.equal(await archive.hasDomain(domain), true)
      assert.equal(await archive.get(domain, 'new'), '2')
      assert.equal(await archive.get(domain, 'old'), undefined)
    }),

    ...options.processes === undefined ? [] : processCases(options.processes)
  ]
}
