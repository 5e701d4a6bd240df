import t from 'tap'
import { RandomPool } from '../lib/random-pool.js'

t.test('a pool draws fresh bytes of its size each time, also past a refill', async (t) => {
  const pool = new RandomPool(8, 4)
  const drawn = Array.from({ length: 12 }, () => pool.text('hex'))
  for (const text of drawn) t.match(text, /^[0-9a-f]{16}$/)
  t.equal(new Set(drawn).size, 12, 'no draw repeats another, across three fillings')
  t.equal(pool.bytes().length, 8)
  t.match(pool.text('base64url'), /^[A-Za-z0-9_-]{11}$/)
})
