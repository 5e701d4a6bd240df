import t from 'tap'
import { Codec, defineSessionType, MAX_DEPTH, UnknownTypeError, type Json } from '../lib/codec.js'

class Money {
  constructor (readonly cents: number, readonly currency = 'EUR') {}
}

const money = defineSessionType({
  name: 'Money',
  type: Money,
  encode: (value) => ({ cents: value.cents, currency: value.currency }),
  decode: (json) => new Money(json.cents, json.currency)
})

/** What a stored form looks like after the trip through JSON text. */
function stored (json: Json): Json {
  return JSON.parse(JSON.stringify(json)) as Json
}

t.test('plain JSON is stored as it is and read back untouched', async (t) => {
  const codec = new Codec()
  const value = { user: { id: '42', name: 'Ada Lovelace' }, visits: 3, tags: ['a', null, true] }
  const json = stored(codec.toJson(value, 'k'))
  t.same(json, value, 'no wrapper, no tags')
  t.equal(codec.fromJson(json), json, 'the very same object comes back: nothing is walked')
  for (const primitive of ['text', 0, -1.5, true, false, null]) {
    t.equal(codec.fromJson(codec.toJson(primitive, 'k')), primitive)
  }
  t.same(stored(codec.toJson({ deep: { '~x': 1, 'x~': 2 } }, 'k')), { deep: { '~x': 1, 'x~': 2 } }, 'only the exact key "~" is reserved')
  const inherited = Object.create({ '~': { '~': 'Date', v: 0 } }) as Json
  t.equal(codec.fromJson(inherited), inherited, 'a "~" key from a prototype is not a tag')
})

t.test('built-in types round-trip exactly, nested anywhere', async (t) => {
  const codec = new Codec()
  const date = new Date('2024-02-29T12:34:56.789Z')
  const value = {
    date,
    invalid: new Date(Number.NaN),
    map: new Map<unknown, unknown>([['b', 1], ['a', new Set([date])], [{ key: 'object' }, [1n]]]),
    set: new Set(['z', 'a', 'm']),
    big: 2n ** 70n + 1n,
    negative: -(2n ** 65n),
    url: new URL('https://example.com/a/b?c=d#e'),
    bytes: new Uint8Array([0, 1, 254, 255]),
    floats: new Float64Array([Math.PI, -0, Number.NaN]),
    words: new Int16Array([-32768, 32767]),
    longs: new BigUint64Array([2n ** 64n - 1n]),
    buffer: Buffer.from('héllo'),
    list: [new Date(0), { inner: new Map([['k', new URL('http://x.test/')]]) }]
  }
  const read = codec.fromJson(stored(codec.toJson(value, 'k'))) as typeof value
  t.ok(read.date instanceof Date)
  t.equal(read.date.getTime(), date.getTime())
  t.ok(Number.isNaN(read.invalid.getTime()), 'an invalid Date stays invalid')
  t.ok(read.map instanceof Map)
  t.same([...read.map.keys()], ['b', 'a', { key: 'object' }], 'entries in their order, any key type')
  const inner = read.map.get('a') as Set<Date>
  t.ok(inner instanceof Set)
  t.equal([...inner][0]!.getTime(), date.getTime())
  t.same(read.set, new Set(['z', 'a', 'm']))
  t.same([...read.set], ['z', 'a', 'm'])
  t.equal(read.big, 2n ** 70n + 1n)
  t.equal(read.negative, -(2n ** 65n))
  t.ok(read.url instanceof URL)
  t.equal(read.url.href, 'https://example.com/a/b?c=d#e')
  t.ok(read.bytes instanceof Uint8Array)
  t.same([...read.bytes], [0, 1, 254, 255])
  t.ok(read.floats instanceof Float64Array)
  t.equal(read.floats[0], Math.PI)
  t.ok(Object.is(read.floats[1], -0))
  t.ok(Number.isNaN(read.floats[2]))
  t.ok(read.words instanceof Int16Array)
  t.same([...read.words], [-32768, 32767])
  t.equal(read.longs[0], 2n ** 64n - 1n)
  t.ok(Buffer.isBuffer(read.buffer))
  t.equal(read.buffer.toString(), 'héllo')
  t.equal((read.list[0] as Date).getTime(), 0)
  t.equal(((read.list[1] as { inner: Map<string, URL> }).inner.get('k'))!.href, 'http://x.test/')
})

t.test('a typed array that views part of a larger buffer stores only its own bytes', async (t) => {
  const codec = new Codec()
  const backing = new Uint8Array([9, 9, 1, 2, 3, 9])
  const read = codec.fromJson(stored(codec.toJson(backing.subarray(2, 5), 'k'))) as Uint8Array
  t.same([...read], [1, 2, 3])
  t.equal(read.buffer.byteLength, 3)
})

t.test('undefined inside a Map or Set becomes null, as in an array', async (t) => {
  const codec = new Codec()
  const read = codec.fromJson(stored(codec.toJson({
    map: new Map([[undefined, undefined]]),
    set: new Set([undefined]),
    list: [undefined]
  }, 'k'))) as { map: Map<unknown, unknown>, set: Set<unknown>, list: unknown[] }
  t.same([...read.map], [[null, null]])
  t.same([...read.set], [null])
  t.same(read.list, [null])
})

t.test('a registered class comes back as an instance, its encoded form encoded in turn', async (t) => {
  class Visit {
    constructor (readonly at: Date, readonly price: Money) {}
  }
  const visit = defineSessionType({
    name: 'Visit',
    type: Visit,
    encode: (value) => ({ at: value.at, price: value.price }),
    decode: ({ at, price }) => new Visit(at, price)
  })
  const codec = new Codec([money, visit])
  const read = codec.fromJson(stored(codec.toJson(new Visit(new Date(5), new Money(250, 'GBP')), 'k'))) as Visit
  t.ok(read instanceof Visit)
  t.ok(read.at instanceof Date)
  t.equal(read.at.getTime(), 5)
  t.ok(read.price instanceof Money)
  t.same(read.price, new Money(250, 'GBP'))
})

t.test('a value that only looks like a tag stays plain data', async (t) => {
  const codec = new Codec([money])
  const lookalikes = {
    top: { '~': 'Money', v: { cents: 1 } },
    date: { '~': 'Date', v: 0 },
    wrapper: { '~': { '~': 'Date', v: 0 } },
    escaped: { '~': 'Object', v: { '~': 'Date' } },
    nested: [{ '~': 'BigInt', v: '1' }],
    odd: { '~': 42 }
  }
  for (const [name, value] of Object.entries(lookalikes)) {
    const read = codec.fromJson(stored(codec.toJson(value, 'k')))
    t.same(read, value, name)
    t.equal(Object.getPrototypeOf(read), Object.getPrototypeOf(value), `${name}: a plain ${Array.isArray(value) ? 'array' : 'object'}`)
  }
  const top = codec.fromJson(stored(codec.toJson({ '~': 'Date', v: 0 }, 'k')))
  t.notOk(top instanceof Date, 'a plain object at the top with a "~" key is never revived')
})

t.test('"__proto__", "constructor" and "prototype" keys stay own keys and touch no prototype', async (t) => {
  const codec = new Codec()
  const value = JSON.parse('{"__proto__": {"polluted": true}, "constructor": {"prototype": {"polluted": true}}, "prototype": 1, "when": 0}')
  value.when = new Date(0)
  const read = codec.fromJson(stored(codec.toJson(value, 'k'))) as Record<string, unknown>
  t.same(Object.keys(read), ['__proto__', 'constructor', 'prototype', 'when'])
  t.equal(Object.getPrototypeOf(read), Object.prototype)
  t.same(Object.getOwnPropertyDescriptor(read, '__proto__')?.value, { polluted: true })
  t.equal(({} as Record<string, unknown>)['polluted'], undefined)
  t.equal((Object.prototype as Record<string, unknown>)['polluted'], undefined)

  const crafted = JSON.parse('{"~": {"__proto__": {"polluted": true}, "constructor": {"~": "Date", "v": 0}}}')
  const revived = codec.fromJson(crafted) as Record<string, unknown>
  t.same(Object.keys(revived), ['__proto__', 'constructor'])
  t.ok(revived['constructor'] instanceof Date)
  t.equal(({} as Record<string, unknown>)['polluted'], undefined)
})

t.test('only registered revivers run: a stored tag of an unknown type throws UnknownTypeError', async (t) => {
  const codec = new Codec()
  const names = ['Money', '__proto__', 'constructor', 'toString', 'hasOwnProperty', 'prototype', 'Function', 'eval']
  for (const name of names) {
    t.throws(() => codec.fromJson({ '~': { '~': name, v: null } }), { name: 'UnknownTypeError', type: name }, name)
    t.throws(() => codec.fromJson({ '~': [1, { '~': name }] }), { name: 'UnknownTypeError', type: name }, `${name} nested`)
  }
  const registered = new Codec([money])
  const json = stored(registered.toJson({ wallet: new Money(1) }, 'k'))
  t.throws(() => new Codec().fromJson(json), { name: 'UnknownTypeError', type: 'Money' }, 'a type no longer registered')
})

t.test('malformed stored tags throw UnknownTypeError naming their type', async (t) => {
  const throwing = defineSessionType({
    name: 'Throwing',
    type: Money,
    encode: (value) => value.cents,
    decode: (): Money => { throw new Error('refused') }
  })
  const codec = new Codec([throwing])
  const cases: Array<[string, Json, string | undefined]> = [
    ['a tag name that is not a string', { '~': 7 }, '7'],
    ['an escaped object that is not an object', { '~': 'Object', v: [1] }, 'Object'],
    ['an escaped object that is null', { '~': 'Object', v: null }, 'Object'],
    ['an escaped object without its entries', { '~': 'Object' }, 'Object'],
    ['a Date that is not a time', { '~': 'Date', v: 'yesterday' }, 'Date'],
    ['a Map that is not a list', { '~': 'Map', v: {} }, 'Map'],
    ['a Map entry that is not a pair', { '~': 'Map', v: [[1, 2, 3]] }, 'Map'],
    ['a Set that is not a list', { '~': 'Set', v: 'abc' }, 'Set'],
    ['a BigInt that is not digits', { '~': 'BigInt', v: '12e3' }, 'BigInt'],
    ['a BigInt that is not text', { '~': 'BigInt', v: 12 }, 'BigInt'],
    ['a URL that does not parse', { '~': 'URL', v: 'not a url' }, 'URL'],
    ['a URL that is not text', { '~': 'URL', v: null }, 'URL'],
    ['bytes that are not base64', { '~': 'Uint8Array', v: '**' }, 'Uint8Array'],
    ['bytes that do not fill whole elements', { '~': 'Float64Array', v: 'AAAA' }, 'Float64Array'],
    ['a registered decode that throws', { '~': 'Throwing', v: 1 }, 'Throwing'],
    ['an unknown type inside a Map', { '~': 'Map', v: [['k', { '~': 'Nope' }]] }, 'Nope']
  ]
  for (const [name, tag, type] of cases) {
    t.throws(() => codec.fromJson({ '~': tag }), { name: 'UnknownTypeError', type }, name)
  }
  const error = t.throws(() => codec.fromJson({ '~': { '~': 'Throwing', v: 1 } })) as UnknownTypeError
  t.match(error.cause, { message: 'refused' }, 'the decode error is the cause')
})

t.test('stored data nesting far deeper than any value set() accepts is refused, not a stack overflow', async (t) => {
  const codec = new Codec()
  let deep: Json = 'leaf'
  for (let i = 0; i < 5000; i++) deep = [deep]
  const error = t.throws(() => codec.fromJson({ '~': deep }), { name: 'UnknownTypeError' }) as UnknownTypeError
  t.equal(error.type, undefined, 'no one type is to blame')
  let deepest: unknown = new Date(0)
  for (let i = 1; i < MAX_DEPTH; i++) deepest = new Map([['k', deepest]])
  const json = stored(codec.toJson(deepest, 'k'))
  t.ok(codec.fromJson(json) instanceof Map, `${MAX_DEPTH} levels of Maps are read back`)
})

t.test('values that cannot be stored fail at toJson with FST_SESSION_UNSERIALIZABLE', async (t) => {
  class Unregistered {}
  class SubMoney extends Money {}
  const failing = defineSessionType({
    name: 'Failing',
    type: Unregistered,
    encode: (): number => { throw new Error('no') },
    decode: () => new Unregistered()
  })
  const selfish = defineSessionType({
    name: 'Selfish',
    type: SubMoney,
    encode: (value) => value,
    decode: (json) => json
  })
  const codec = new Codec([money, failing, selfish])
  const cyclic = new Map<string, unknown>()
  cyclic.set('self', cyclic)
  const refused: Array<[string, unknown]> = [
    ['a function in a Map', new Map([['f', () => 1]])],
    ['a symbol in a Set', new Set([Symbol('s')])],
    ['a cycle through a Map', cyclic],
    ['an instance of a subclass of a built-in', new (class extends Map {})()],
    ['a registered encode that throws', new Unregistered()],
    ['a registered encode that returns its input', new SubMoney(1)],
    ['a Money holding a function', new Money((() => 1) as never)],
    ['a WeakMap', new WeakMap()],
    ['a RegExp', /x/],
    ['a Promise', Promise.resolve()]
  ]
  for (const [name, value] of refused) {
    t.throws(() => codec.toJson({ nested: [value] }, 'the-key'), { code: 'FST_SESSION_UNSERIALIZABLE' }, name)
  }
  const error = t.throws(() => codec.toJson(new Unregistered(), 'k')) as Error
  t.match(error.cause, { message: 'no' }, 'the encode error is the cause')
})
