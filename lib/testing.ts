import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
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

/**
 * The checks every archive in this package passes, for checking your own.
 * Each case makes its own archive with `makeArchive`, uses fresh random domain
 * names, closes the archive when done and throws (`node:assert`) on failure.
 * The ttl cases wait about 150 ms.
 *
 * @example
 * ```ts
 * import t from 'tap'
 * import { archiveConformance } from 'fastify-sessions/testing'
 *
 * for (const { name, run } of archiveConformance(() => new MyArchive())) t.test(name, run)
 * ```
 */
export function archiveConformance (makeArchive: () => Archive | Promise<Archive>): ConformanceCase[] {
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
    })
  ]
}
