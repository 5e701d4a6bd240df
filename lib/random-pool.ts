import { randomFillSync } from 'node:crypto'

/**
 * Random bytes drawn `size` at a time from a buffer that one call into the
 * CSPRNG refills when it is used up, instead of one call per draw.
 */
export class RandomPool {
  readonly #pool: Buffer
  readonly #size: number
  #offset: number

  /** @param size bytes per draw @param draws draws per refill */
  constructor (size: number, draws: number) {
    this.#pool = Buffer.alloc(size * draws)
    this.#size = size
    this.#offset = this.#pool.length
  }

  /** The next `size` bytes, as a view of the pool: used before the pool is refilled, `draws` draws later. */
  bytes (): Buffer {
    const start = this.#draw()
    return this.#pool.subarray(start, start + this.#size)
  }

  /** The next `size` bytes, as text. */
  text (encoding: 'hex' | 'base64url'): string {
    const start = this.#draw()
    return this.#pool.toString(encoding, start, start + this.#size)
  }

  #draw (): number {
    if (this.#offset === this.#pool.length) {
      randomFillSync(this.#pool)
      this.#offset = 0
    }
    const start = this.#offset
    this.#offset += this.#size
    return start
  }
}
