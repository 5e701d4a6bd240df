import t from 'tap'
import { Codec, MAX_DEPTH } from '../lib/codec.js'
import { buildApp, cookieValue, setCookies } from './helpers/app.js'
import { ironUnseal } from './helpers/iron.js'

function nested (depth: number): unknown {
  let value: unknown = 'leaf'
  for (let i = 0; i < depth; i++) value = i % 2 === 0 ? { next: value } : [value]
  return value
}

class Point {
  x = 1
}

const cyclic: Record<string, unknown> = { name: 'loop' }
cyclic['self'] = cyclic

const nameless = Object.create({ constructor: { name: '' } })
const oddlyNamed = Object.create({ constructor: { name: 42 } })
const noConstructor = Object.create(Object.create(null))

const refused: Array<[string, unknown]> = [
  ['a function', () => 1],
  ['a symbol', Symbol('s')],
  ['NaN', Number.NaN],
  ['Infinity', Number.POSITIVE_INFINITY],
  ['a cycle', cyclic],
  ['a cycle through an array', (() => { const a: unknown[] = []; a.push({ a }); return a })()],
  [`nesting deeper than ${MAX_DEPTH}`, nested(MAX_DEPTH + 1)],
  ['a class instance', new Point()],
  ['an instance of a subclass of Map', new (class Registry extends Map {})()],
  ['a function inside a Map', new Map([['f', () => 1]])],
  ['a symbol inside a Set', new Set([Symbol('s')])],
  ['a cycle through a Map', (() => { const m = new Map<string, unknown>(); m.set('self', m); return m })()],
  ['an instance of an anonymous class', nameless],
  ['an object whose constructor name is not a string', oddlyNamed],
  ['an object with a prototype but no constructor', noConstructor],
  ['a function inside an object', { ok: 1, bad: () => 1 }],
  ['a function inside a Date-holding array', [new Date(0), () => 1]]
]

t.test('a value that cannot be stored throws FST_SESSION_UNSERIALIZABLE at set(), and the session is unchanged', async (t) => {
  const app = await buildApp(t)
  app.get('/:i', async (request) => {
    const [, value] = refused[Number((request.params as { i: string }).i)]!
    try {
      request.session.set('value', value)
      return { code: null }
    } catch (err) {
      return { code: (err as { code: string }).code, changed: request.session.changed, has: request.session.has('value') }
    }
  })
  for (let i = 0; i < refused.length; i++) {
    const response = await app.inject(`/${i}`)
    t.same(response.json(), { code: 'FST_SESSION_UNSERIALIZABLE', changed: false, has: false }, refused[i]![0])
    t.same(setCookies(response), [])
  }
})

t.test('JSON-like values are stored as JSON holds them', async (t) => {
  const app = await buildApp(t)
  const shared = { id: 1 }
  const withProto = JSON.parse('{"__proto__": {"polluted": true}, "plain": 1}')
  const bare = Object.assign(Object.create(null), { a: 1 })
  app.get('/', async (request) => {
    request.session.set('null', null)
    request.session.set('flag', false)
    request.session.set('number', -0.5)
    request.session.set('text', 'ünïcode ✓')
    request.session.set('sparse', [1, undefined, 3])
    request.session.set('partial', { kept: 1, dropped: undefined })
    request.session.set('shared', { a: shared, b: shared })
    request.session.set('proto', withProto)
    request.session.set('bare', bare)
    request.session.set('deep', nested(MAX_DEPTH))
    return { ok: true }
  })
  const response = await app.inject('/')
  t.equal(response.statusCode, 200)
  const { d } = await ironUnseal(cookieValue(response)!) as { d: Record<string, unknown> }
  t.same(d['null'], null)
  t.equal(d['flag'], false)
  t.equal(d['number'], -0.5)
  t.equal(d['text'], 'ünïcode ✓')
  t.same(d['sparse'], [1, null, 3], 'undefined in an array becomes null')
  t.same(d['partial'], { kept: 1 }, 'undefined in an object is left out')
  t.same(d['shared'], { a: { id: 1 }, b: { id: 1 } }, 'a value used twice is not a cycle')
  t.same(Object.keys(d['proto'] as object), ['__proto__', 'plain'], 'a "__proto__" key stays an ordinary key')
  t.equal(({} as Record<string, unknown>)['polluted'], undefined)
  t.same(d['bare'], { a: 1 })
  t.same(d['deep'], nested(MAX_DEPTH), `${MAX_DEPTH} levels are allowed`)
})

t.test('the codec turns values into JSON and back', async (t) => {
  const codec = new Codec()
  t.same(codec.fromJson(codec.toJson({ a: [1, 'b', null, true] }, 'k')), { a: [1, 'b', null, true] })
  t.throws(() => codec.toJson(undefined, 'k'), { code: 'FST_SESSION_UNSERIALIZABLE' }, 'undefined on its own is not a value')
})
