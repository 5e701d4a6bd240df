import t from 'tap'
import { RecentRing, printAt } from '../lib/recent-ring.js'

t.test('a ring remembers its last values and forgets the oldest first', async (t) => {
  const ring = new RecentRing<number>(3)
  for (const n of [1, 2, 3]) ring.add(`key-${n}`, printAt(`key-${n}`, 0), n)
  t.same([1, 2, 3].map((n) => ring.get(`key-${n}`, printAt(`key-${n}`, 0))), [1, 2, 3])
  for (const n of [4, 5, 6, 7]) ring.add(`key-${n}`, printAt(`key-${n}`, 0), n)
  t.same([1, 2, 3, 4].map((n) => ring.get(`key-${n}`, printAt(`key-${n}`, 0))), [undefined, undefined, undefined, undefined], 'the oldest went, round the ring')
  t.same([5, 6, 7].map((n) => ring.get(`key-${n}`, printAt(`key-${n}`, 0))), [5, 6, 7])
})

t.test('keys with the same print are told apart by the key itself', async (t) => {
  const ring = new RecentRing<string>(4)
  t.equal(printAt('abcd-one', 0), printAt('abcd-two', 0))
  ring.add('abcd-one', printAt('abcd-one', 0), 'one')
  ring.add('abcd-two', printAt('abcd-two', 0), 'two')
  t.equal(ring.get('abcd-one', printAt('abcd-one', 0)), 'one')
  t.equal(ring.get('abcd-two', printAt('abcd-two', 0)), 'two')
  t.equal(ring.get('abcd-three', printAt('abcd-three', 0)), undefined)
  t.equal(ring.get('abcd-one', printAt('wxyz', 0)), undefined, 'a key is looked for under its own print')
})

t.test('a ring bounded in bytes forgets the oldest until a value fits, and keeps none larger than the bound', async (t) => {
  const ring = new RecentRing<string>(10, 100)
  ring.add('a', printAt('a', 0), 'a', 40)
  ring.add('b', printAt('b', 0), 'b', 40)
  ring.add('c', printAt('c', 0), 'c', 50)
  t.equal(ring.get('a', printAt('a', 0)), undefined, 'a made room')
  t.equal(ring.get('b', printAt('b', 0)), 'b', 'b still fits beside c')
  t.equal(ring.get('c', printAt('c', 0)), 'c')
  ring.add('d', printAt('d', 0), 'd', 101)
  t.equal(ring.get('d', printAt('d', 0)), undefined, 'over the whole bound: not kept')
  t.equal(ring.get('b', printAt('b', 0)), 'b', 'and nothing was forgotten for it')
  ring.add('e', printAt('e', 0), 'e', 100)
  t.same(['b', 'c', 'e'].map((key) => ring.get(key, printAt(key, 0))), [undefined, undefined, 'e'], 'a value of the whole bound takes it all')
})

t.test('a print reads four characters from where it is told, and 0 for those past the end', async (t) => {
  t.equal(printAt('xxABCD', 2), printAt('ABCD', 0))
  t.equal(printAt('AB', 0), ('A'.charCodeAt(0) << 24) | ('B'.charCodeAt(0) << 16))
  t.equal(printAt('', 0), 0)
})
