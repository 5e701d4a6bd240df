import { writeFile } from 'node:fs/promises'
import path from 'node:path'
import t from 'tap'
import type { Archive } from '../../lib/archives/archive.js'
import { FileArchive } from '../../lib/archives/file.js'
import { MemoryArchive } from '../../lib/archives/memory.js'
import { archiveConformance } from '../../lib/testing.js'
import { tempDir } from '../helpers/temp-dir.js'

/**
 * An archive as a user might write one: a Map of Maps, expiry checked on
 * read, no `close`. It shows the suite serves archives outside this package.
 */
class MapArchive implements Archive {
  readonly #domains = new Map<string, Map<string, { value: string, expiresAt: number }>>()

  #live (domain: string, key: string): string | undefined {
    const entry = this.#domains.get(domain)?.get(key)
    if (entry === undefined || entry.expiresAt > Date.now()) return entry?.value
    this.#drop(domain, key)
    return undefined
  }

  #drop (domain: string, key: string): void {
    const keys = this.#domains.get(domain)
    keys?.delete(key)
    if (keys?.size === 0) this.#domains.delete(domain)
  }

  async get (domain: string, key: string): Promise<string | undefined> {
    return this.#live(domain, key)
  }

  async set (domain: string, key: string, value: string, ttlMs?: number): Promise<void> {
    const keys = this.#domains.get(domain) ?? new Map()
    keys.set(key, { value, expiresAt: ttlMs === undefined ? Infinity : Date.now() + ttlMs })
    this.#domains.set(domain, keys)
  }

  async has (domain: string, key: string): Promise<boolean> {
    return this.#live(domain, key) !== undefined
  }

  async remove (domain: string, key: string): Promise<void> {
    this.#drop(domain, key)
  }

  async hasDomain (domain: string): Promise<boolean> {
    const keys = [...this.#domains.get(domain)?.keys() ?? []]
    return keys.some((key) => this.#live(domain, key) !== undefined)
  }

  async removeDomain (domain: string): Promise<void> {
    this.#domains.delete(domain)
  }
}

t.test('MemoryArchive', async (t) => {
  for (const { name, run } of archiveConformance(() => new MemoryArchive())) t.test(name, (t) => t.resolves(run()))
})

t.test('FileArchive', async (t) => {
  // Children import the built archive, as another server process would.
  const processes = { module: new URL('../helpers/file-archive-at.js', import.meta.url), place: () => tempDir(t) }
  for (const { name, run } of archiveConformance(async () => {
    return new FileArchive({ dir: path.join(await tempDir(t), 'sessions') })
  }, { processes })) t.test(name, (t) => t.resolves(run()))
})

t.test('the cross-process cases take a module by path too, and fail an archive without compareAndSet', async (t) => {
  const dir = await tempDir(t)
  const module = path.join(dir, 'memory-at.mjs')
  const memory = new URL('../../dist/archives/memory.js', import.meta.url).href
  // An archive without compareAndSet, which the cross-process cases refuse.
  await writeFile(module, `import { MemoryArchive } from ${JSON.stringify(memory)}\nexport default () => Object.assign(new MemoryArchive(), { compareAndSet: undefined })\n`)
  const cases = archiveConformance(() => new MemoryArchive(), { processes: { module, place: () => dir } })
  const crossProcess = cases.slice(-3)
  t.equal(cases.length, archiveConformance(() => new MemoryArchive()).length + 3, 'three cases are added')
  for (const { run } of crossProcess) await t.rejects(run(), { message: /implements compareAndSet/ })

  // An archive that this process can make and a child cannot.
  const broken = path.join(dir, 'broken-at.mjs')
  await writeFile(broken, `import { MemoryArchive } from ${JSON.stringify(memory)}
export default () => {
  if (process.argv.includes('increment')) throw new Error('no archive in a child')
  return Object.assign(new MemoryArchive(), { compareAndSet: async () => true })
}
`)
  const [increments] = archiveConformance(() => new MemoryArchive(), { processes: { module: broken, place: () => dir } }).slice(-3)
  await t.rejects(increments!.run(), { message: /the child running increment failed: .*no archive in a child/s }, 'a failing child fails the case, with its output')
})

t.test('an archive written by a user', async (t) => {
  for (const { name, run } of archiveConformance(() => new MapArchive())) t.test(name, (t) => t.resolves(run()))
})

t.test('the suite fails an archive that breaks the contract', async (t) => {
  class ForgetfulArchive extends MapArchive {
    override async set (): Promise<void> {}
  }
  const failures = []
  for (const { run } of archiveConformance(() => new ForgetfulArchive())) {
    await run().then(() => {}, (error: unknown) => { failures.push(error) })
  }
  t.ok(failures.length > 0, `${failures.length} cases fail an archive that stores nothing`)
})
