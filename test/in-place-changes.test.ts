import t from 'tap'
import { Codec, copyJson, encodesTo, type Json } from '../lib/codec.js'
import { buildApp, setCookies } from './helpers/app.js'
import { carry, sessionModes } from './helpers/session-modes.js'

const codec = new Codec()

t.test('encodesTo: true exactly when the value is plain data whose stored text is the stored form\'s', async (t) => {
  const same: Array<[unknown, Json]> = [
    ['text', 'text'], [3, 3], [true, true], [null, null],
    [{ a: 1, b: [1, 'x', null] }, { a: 1, b: [1, 'x', null] }],
    [{ a: 1, gone: undefined }, { a: 1 }],
    [[1, undefined], [1, null]],
    [Object.assign(Object.create(null), { a: 1 }), { a: 1 }]
  ]
  for (const [value, json] of same) {
    t.ok(encodesTo(value, json), `${JSON.stringify(json)} is what ${JSON.stringify(value)} encodes to`)
    t.equal(JSON.stringify(codec.toJson(value, 'k')), JSON.stringify(json), 'as the codec says')
  }
  const different: Array<[unknown, Json, string]> = [
    [3, 4, 'another number'],
    ['3', 3, 'a string for a number'],
    [{ a: 1 }, 1, 'an object for a number'],
    [1, { a: 1 }, 'a number for an object'],
    [[1, 2], [1], 'a longer list'],
    [[1], { 0: 1 }, 'a list for an object'],
    [{ 0: 1 }, [1], 'an object for a list'],
    [[undefined], [1], 'a hole for a value'],
    [{ b: 1, a: 2 }, { a: 2, b: 1 }, 'the same keys in another order'],
    [{ a: 1 }, { a: 1, b: 2 }, 'a key fewer'],
    [{ a: 1, b: 2 }, { a: 1 }, 'a key more'],
    [{ a: { b: 1 } }, { a: { b: 2 } }, 'a change deep down'],
    [new Date(0), { '~': { '~': 'Date', v: 0 } }, 'a Date, which only encoding can compare'],
    [{ '~': 1 }, { '~': { '~': 'Object', v: { '~': 1 } } }, 'an object with a "~" key, which is stored tagged'],
    [{ '~': 1 }, { '~': 1 }, 'an object with a "~" key, against a form that could not be its own']
  ]
  for (const [value, json, what] of different) t.notOk(encodesTo(value, json), what)
})

t.test('copyJson: a deep copy in ordinary objects, "__proto__" an own key', async (t) => {
  const json = JSON.parse('{"a":[1,{"b":null}],"__proto__":{"c":"d"}}') as Json
  const copy = copyJson(json) as Record<string, Json>
  t.same(copy, json, 'the same data')
  t.not(copy['a'], (json as Record<string, Json>)['a'], 'in objects of its own')
  t.equal(Object.getPrototypeOf(copy), Object.prototype, 'whose prototype is untouched')
  t.ok(Object.hasOwn(copy, '__proto__'), 'and "__proto__" is an own key')
  t.equal(JSON.stringify(copy), JSON.stringify(json), 'stored as the same text')
})

t.test('the codec\'s copies keep a "__proto__" key an own key', async (t) => {
  const value = JSON.parse('{"__proto__":{"admin":true},"x":1}') as Record<string, unknown>
  const json = codec.toJson(value, 'k') as Record<string, Json>
  t.equal(Object.getPrototypeOf(json), Object.prototype)
  t.ok(Object.hasOwn(json, '__proto__'))
  t.equal(JSON.stringify(json), '{"__proto__":{"admin":true},"x":1}')
})

for (const mode of sessionModes) {
  t.test(`${mode.name}: a value changed in place after set() is saved, and one left alone is not`, async (t) => {
    const { options } = await mode.setup(t)
    const app = await buildApp(t, options)
    app.post('/start', async (request) => {
      const cart = ['book']
      request.session.set('cart', cart)
      request.session.set('prefs', { theme: 'dark' })
      cart.push('pen')
      return 'ok'
    })
    app.post('/look', async (request) => {
      const prefs = request.session.get('prefs')
      return { cart: request.session.get('cart'), prefs }
    })
    const started = await app.inject({ method: 'POST', url: '/start' })
    const looked = await app.inject({ method: 'POST', url: '/look', cookies: carry(mode, started) })
    t.same(looked.json(), { cart: ['book', 'pen'], prefs: { theme: 'dark' } }, 'the push after set() was stored')
    t.same(setCookies(looked), [], 'values only read are not stored again')
  })

  t.test(`${mode.name}: data() gives a value read back and changed in place as it is now`, async (t) => {
    const { options } = await mode.setup(t)
    const app = await buildApp(t, options)
    app.post('/start', async (request) => { request.session.set('cart', ['book']); return 'ok' })
    app.post('/add', async (request) => {
      (request.session.get('cart') as string[]).push('pen')
      return request.session.data()
    })
    const started = await app.inject({ method: 'POST', url: '/start' })
    const added = await app.inject({ method: 'POST', url: '/add', cookies: carry(mode, started) })
    t.same(added.json(), { cart: ['book', 'pen'] }, 'the change shows at once')
    t.equal(setCookies(added).length, 1, 'and is stored')
  })

  t.test(`${mode.name}: a tagged value set again equal, or handed out and left alone, changes nothing; set again different, it is stored`, async (t) => {
    const { options } = await mode.setup(t)
    const app = await buildApp(t, options)
    app.post('/start', async (request) => {
      request.session.set('when', new Date(0))
      request.session.set('tags', new Set(['a']))
      return 'ok'
    })
    app.post('/same', async (request) => {
      request.session.set('when', new Date(0))
      request.session.get('tags')
      return { changed: request.session.changed }
    })
    app.post('/later', async (request) => {
      request.session.set('when', new Date(1))
      return { changed: request.session.changed }
    })
    app.post('/grow', async (request) => {
      (request.session.get('tags') as Set<string>).add('b')
      return 'ok'
    })
    app.post('/look', async (request) => ({ when: (request.session.get('when') as Date).getTime(), tags: [...request.session.get('tags') as Set<string>] }))
    const started = await app.inject({ method: 'POST', url: '/start' })
    const same = await app.inject({ method: 'POST', url: '/same', cookies: carry(mode, started) })
    t.same(same.json(), { changed: false }, 'an equal Date is no change')
    t.same(setCookies(same), [], 'and nothing is stored')
    const later = await app.inject({ method: 'POST', url: '/later', cookies: carry(mode, started) })
    t.same(later.json(), { changed: true }, 'another Date is a change')
    const grown = await app.inject({ method: 'POST', url: '/grow', cookies: carry(mode, later) })
    t.equal(setCookies(grown).length, 1, 'a Set grown in place is stored')
    const looked = await app.inject({ method: 'POST', url: '/look', cookies: carry(mode, grown) })
    t.same(looked.json(), { when: 1, tags: ['a', 'b'] })
  })

  t.test(`${mode.name}: a number or text set over another value is stored`, async (t) => {
    const { options } = await mode.setup(t)
    const app = await buildApp(t, options)
    app.post('/start', async (request) => { request.session.set('x', { a: 1 }); request.session.set('n', 1); return 'ok' })
    app.post('/swap', async (request) => {
      request.session.set('x', 2)
      request.session.set('n', 1)
      return { changed: request.session.changed }
    })
    app.post('/look', async (request) => ({ x: request.session.get('x') }))
    const started = await app.inject({ method: 'POST', url: '/start' })
    const swapped = await app.inject({ method: 'POST', url: '/swap', cookies: carry(mode, started) })
    t.same(swapped.json(), { changed: true })
    const looked = await app.inject({ method: 'POST', url: '/look', cookies: carry(mode, swapped) })
    t.same(looked.json(), { x: 2 })
  })

  t.test(`${mode.name}: the last set() of a key in a request is what is stored, whatever was set before it`, async (t) => {
    const { options } = await mode.setup(t)
    const app = await buildApp(t, options)
    app.post('/start', async (request) => { request.session.set('kept', { a: 1 }); return 'ok' })
    app.post('/flip', async (request) => {
      request.session.set('fresh', { a: 1 })
      request.session.set('fresh', 5)
      request.session.set('fresh', { a: 1 })
      const kept = request.session.get('kept')
      request.session.set('kept', 5)
      request.session.set('kept', kept)
      return 'ok'
    })
    app.post('/look', async (request) => ({ fresh: request.session.get('fresh'), kept: request.session.get('kept') }))
    const started = await app.inject({ method: 'POST', url: '/start' })
    const flipped = await app.inject({ method: 'POST', url: '/flip', cookies: carry(mode, started) })
    const looked = await app.inject({ method: 'POST', url: '/look', cookies: carry(mode, flipped) })
    t.same(looked.json(), { fresh: { a: 1 }, kept: { a: 1 } })
  })
}
