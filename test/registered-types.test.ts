import t from 'tap'
import { defineSessionType, type SessionType } from '../lib/index.js'
import { buildApp } from './helpers/app.js'
import { roundTrip, sessionModes } from './helpers/session-modes.js'

class Money {
  constructor (readonly cents: bigint, readonly currency: string) {}

  add (other: Money): Money {
    return new Money(this.cents + other.cents, this.currency)
  }
}

class Cart {
  constructor (readonly items: Map<string, Money>, readonly updated: Date) {}
}

const money = defineSessionType({
  name: 'Money',
  type: Money,
  encode: (value) => ({ cents: value.cents, currency: value.currency }),
  decode: (json) => new Money(json.cents, json.currency)
})

const cart = defineSessionType({
  name: 'Cart',
  type: Cart,
  encode: (value) => ({ items: value.items, updated: value.updated }),
  decode: ({ items, updated }) => new Cart(items, updated)
})

for (const mode of sessionModes) {
  t.test(`${mode.name}: a registered class comes back as an instance with its fields, nested anywhere`, async (t) => {
    const read = await roundTrip(t, mode, {
      price: new Money(1999n, 'EUR'),
      cart: new Cart(new Map([['book', new Money(2n ** 70n, 'GBP')]]), new Date(1000)),
      list: [{ deep: new Money(1n, 'USD') }]
    }, { types: [money, cart] })

    const price = read['price'] as Money
    t.ok(price instanceof Money)
    t.equal(price.cents, 1999n)
    t.equal(price.currency, 'EUR')
    t.equal(price.add(price).cents, 3998n, 'its methods work')

    const stored = read['cart'] as Cart
    t.ok(stored instanceof Cart)
    t.ok(stored.updated instanceof Date)
    t.equal(stored.updated.getTime(), 1000)
    const book = stored.items.get('book')
    t.ok(book instanceof Money, 'a registered instance inside what another encode returned')
    t.equal(book!.cents, 2n ** 70n)

    const deep = (read['list'] as Array<{ deep: Money }>)[0]!.deep
    t.ok(deep instanceof Money)
    t.equal(deep.currency, 'USD')
  })

  t.test(`${mode.name}: instances of a subclass or of an unregistered class fail at set()`, async (t) => {
    class Discount extends Money {}
    const { options } = await mode.setup(t)
    const app = await buildApp(t, { ...options, types: [money] })
    app.get('/', async (request) => {
      const codes = []
      for (const value of [new Discount(1n, 'EUR'), new Cart(new Map(), new Date())]) {
        try {
          request.session.set('value', value)
          codes.push(null)
        } catch (err) {
          codes.push((err as { code: string }).code)
        }
      }
      return { codes, has: request.session.has('value') }
    })
    t.same((await app.inject('/')).json(), { codes: ['FST_SESSION_UNSERIALIZABLE', 'FST_SESSION_UNSERIALIZABLE'], has: false })
  })
}

t.test('types are per registration: another app does not know them', async (t) => {
  const withTypes = await buildApp(t, { types: [money] })
  const without = await buildApp(t)
  for (const app of [withTypes, without]) {
    app.get('/', async (request) => {
      try {
        request.session.set('price', new Money(1n, 'EUR'))
        return { code: null }
      } catch (err) {
        return { code: (err as { code: string }).code }
      }
    })
  }
  t.same((await withTypes.inject('/')).json(), { code: null })
  t.same((await without.inject('/')).json(), { code: 'FST_SESSION_UNSERIALIZABLE' })
})

t.test('the types option is checked at registration', async (t) => {
  const decode = (): Money => new Money(0n, 'EUR')
  const encode = (): number => 0
  const like = (overrides: Record<string, unknown>): unknown => ({ name: 'Thing', type: Money, encode, decode, ...overrides })
  const cases: Array<[string, unknown]> = [
    ['not an array', money],
    ['an item that is not an object', [null]],
    ['an item that is an array', [[]]],
    ['a name that is not a string', [like({ name: 1 })]],
    ['an empty name', [like({ name: '' })]],
    ['the name of a built-in type', [like({ name: 'Date' })]],
    ['the name of the escaped object tag', [like({ name: 'Object' })]],
    ['the name of the bigint tag', [like({ name: 'BigInt' })]],
    ['a name used twice', [like({}), like({ type: Cart })]],
    ['a type that is not a function', [like({ type: {} })]],
    ['a type without a prototype (an arrow function)', [like({ type: () => 1 })]],
    ['the plain object type', [like({ type: Object })]],
    ['the array type', [like({ type: Array })]],
    ['a built-in type', [like({ type: Date })]],
    ['a typed array type', [like({ type: Uint8Array })]],
    ['a class registered twice', [like({}), like({ name: 'Other' })]],
    ['an encode that is not a function', [like({ encode: 'json' })]],
    ['a decode that is not a function', [like({ decode: undefined })]]
  ]
  for (const [name, types] of cases) {
    await t.rejects(buildApp(t, { types: types as SessionType[] }), { code: 'FST_SESSION_INVALID_OPTION' }, name)
  }
  await t.resolves(buildApp(t, { types: [] }), 'an empty list')
  await t.resolves(buildApp(t, { types: [money, cart, like({ name: 'Plain', type: class Plain {} }) as SessionType] }), 'distinct names and classes')
})
