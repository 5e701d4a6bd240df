function noop (): void {}

/**
 * Runs work for one key at a time, in the order it was queued; work for
 * different keys runs freely. A key with nothing queued has no entry, so the
 * map never grows with the number of keys ever seen.
 */
export class KeyedQueue {
  readonly #tails = new Map<string, Promise<void>>()

  run<T> (key: string, work: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(key)
    const result = previous === undefined ? work() : previous.then(work)
    const tail: Promise<void> = result.then(noop, noop).then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key)
    })
    this.#tails.set(key, tail)
    return result
  }
}
