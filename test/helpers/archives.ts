import type { Archive } from '../../lib/archives/archive.js'

/** One call an archive received. */
export interface ArchiveCall {
  method: 'get' | 'set' | 'has' | 'remove' | 'hasDomain' | 'removeDomain'
  domain: string
}

/**
 * Wraps an archive, recording every call, and lets a test delay or fail the
 * next calls of a method: the seams for concurrency and fault tests.
 */
export class RecordingArchive implements Archive {
  readonly calls: ArchiveCall[] = []
  readonly #inner: Archive
  readonly #faults = new Map<ArchiveCall['method'], Error>()
  readonly #gates = new Map<ArchiveCall['method'], Promise<void>>()

  constructor (inner: Archive) {
    this.#inner = inner
  }

  /** Every call of `method` fails with `error` until `heal()`. */
  fail (method: ArchiveCall['method'], error: Error): void {
    this.#faults.set(method, error)
  }

  heal (): void {
    this.#faults.clear()
  }

  /** Every call of `method` waits for `gate` first (until `ungate()`). */
  gate (method: ArchiveCall['method'], gate: Promise<void>): void {
    this.#gates.set(method, gate)
  }

  ungate (): void {
    this.#gates.clear()
  }

  domainsOf (method: ArchiveCall['method']): string[] {
    return this.calls.filter((call) => call.method === method).map((call) => call.domain)
  }

  async #enter (method: ArchiveCall['method'], domain: string): Promise<void> {
    this.calls.push({ method, domain })
    await this.#gates.get(method)
    const fault = this.#faults.get(method)
    if (fault !== undefined) throw fault
  }

  async get (domain: string, key: string): Promise<string | undefined> {
    await this.#enter('get', domain)
    return this.#inner.get(domain, key)
  }

  async set (domain: string, key: string, value: string, ttlMs?: number): Promise<void> {
    await this.#enter('set', domain)
    return this.#inner.set(domain, key, value, ttlMs)
  }

  async has (domain: string, key: string): Promise<boolean> {
    await this.#enter('has', domain)
    return this.#inner.has(domain, key)
  }

  async remove (domain: string, key: string): Promise<void> {
    await this.#enter('remove', domain)
    return this.#inner.remove(domain, key)
  }

  async hasDomain (domain: string): Promise<boolean> {
    await this.#enter('hasDomain', domain)
    return this.#inner.hasDomain(domain)
  }

  async removeDomain (domain: string): Promise<void> {
    await this.#enter('removeDomain', domain)
    return this.#inner.removeDomain(domain)
  }
}

/** A promise and the function that resolves it. */
export function deferred (): { promise: Promise<void>, resolve: () => void } {
  let resolve!: () => void
  const promise = new Promise<void>((_resolve) => { resolve = _resolve })
  return { promise, resolve }
}
