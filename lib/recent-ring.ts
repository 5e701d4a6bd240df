/**
 * The last few values remembered under string keys, the oldest forgotten
 * first: a ring of slots, found by scanning one number per key (its print,
 * from `printAt`) and comparing the key itself only where the print matches.
 *
 * A Map turned over by every new key kept each entry alive through two
 * collections, so that V8 moved them all to the old generation, whose garbage
 * only a full collection frees: with many distinct visitors, every request
 * left its entry there. Slots overwritten in place leave nothing behind.
 */
export class RecentRing<V> {
  readonly #prints: Int32Array
  readonly #keys: Array<string | undefined>
  readonly #values: Array<V | undefined>
  readonly #sizes: Float64Array
  readonly #maxBytes: number
  #oldest = 0
  #count = 0
  #bytes = 0

  /**
   * @param slots how many values are remembered at most (at least one)
   * @param maxBytes how many bytes, as the caller counts them, they may take in all
   */
  constructor (slots: number, maxBytes = Infinity) {
    this.#prints = new Int32Array(slots)
    this.#keys = new Array<string | undefined>(slots).fill(undefined)
    this.#values = new Array<V | undefined>(slots).fill(undefined)
    this.#sizes = new Float64Array(slots)
    this.#maxBytes = maxBytes
  }

  get (key: string, print: number): V | undefined {
    const slots = this.#prints.length
    for (let n = 0, i = this.#oldest; n < this.#count; n++, i = i + 1 === slots ? 0 : i + 1) {
      if (this.#prints[i] === print && this.#keys[i] === key) return this.#values[i]
    }
    return undefined
  }

  /**
   * Remembers `value` under `key`, which is not remembered yet, forgetting the
   * oldest to make room; a value larger than all the bytes allowed is not kept.
   */
  add (key: string, print: number, value: V, bytes = 0): void {
    if (bytes > this.#maxBytes) return
    const slots = this.#prints.length
    while (this.#count === slots || this.#bytes + bytes > this.#maxBytes) {
      const oldest = this.#oldest
      this.#bytes -= this.#sizes[oldest] as number
      this.#keys[oldest] = undefined
      this.#values[oldest] = undefined
      this.#oldest = oldest + 1 === slots ? 0 : oldest + 1
      this.#count--
    }
    const slot = (this.#oldest + this.#count) % slots
    this.#prints[slot] = print
    this.#keys[slot] = key
    this.#values[slot] = value
    this.#sizes[slot] = bytes
    this.#count++
    this.#bytes += bytes
  }
}

/** Four characters of `text` from `start` as one number (0 for those past its end): a key's print. */
export function printAt (text: string, start: number): number {
  return (text.charCodeAt(start) << 24) | (text.charCodeAt(start + 1) << 16) | (text.charCodeAt(start + 2) << 8) | text.charCodeAt(start + 3)
}
