import type { Test } from 'tap'

/** Moves `Date.now()` forward by `ms` (cumulatively) until the test ends. */
export function advanceClock (t: Test, ms: number): void {
  const previous = Date.now
  Date.now = () => previous() + ms
  t.teardown(() => {
    Date.now = previous
  })
}
