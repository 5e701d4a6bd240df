import t, { type Test } from 'tap'
import { MemoryArchive } from '../lib/archives/memory.js'
import { SESSION_KEY } from '../lib/archive-mode.js'
import { buildApp, cookieValue } from './helpers/app.js'
import { deferred, RecordingArchive } from './helpers/archives.js'

// A save writes the session's stored form as JSON text, reusing the text of
// each value that its check for in-place changes has just serialised. The
// text must be exactly what JSON.stringify writes for that stored form.

async function storedApp (t: Test) {
  const archive = new MemoryArchive()
  const app = await buildApp(t, { mode: 'archive', archive })
  const stored = async (cookie: string | undefined): Promise<string> => {
    const text = await archive.get((cookie ?? '').split('.')[0] as string, SESSION_KEY)
    if (text === undefined) throw new Error('nothing stored')
    return text
  }
  return { app, stored }
}

/** The stored text parsed, and whether writing the parsed form again gives the same text. */
function reparsed (text: string): { form: Record<string, unknown>, same: boolean } {
  const form = JSON.parse(text) as Record<string, unknown>
  return { form, same: JSON.stringify(form) === text }
}

t.test('a new session is stored as the JSON of its stored form, whatever its keys are called', async (t) => {
  const { app, stored } = await storedApp(t)
  app.get('/new', async (request) => {
    const session = request.session
    session.set('user', { id: '42', name: 'Ada "the first" Lovelace', tags: ['a', 'ü', '\u2028'] })
    session.set('10', { n: 10 })
    session.set('2', 'two')
    session.set('__proto__', { polluted: true })
    session.set('quo"te\\', [1, { deep: null }])
    session.set('when', new Date(0))
    session.set('visits', 3)
    session.options({ maxAge: 600 })
    session.bindUser('user-1')
    return { ok: true }
  })
  const response = await app.inject('/new')
  const { form, same } = reparsed(await stored(cookieValue(response, 'session-id')))
  t.ok(same, 'the text is what JSON.stringify writes for it')
  t.same(Object.keys(form), ['c', 't', 'd', 'm', 'u', 'h'], 'the stored form\'s fields, in order')
  t.equal(form['m'], 600)
  t.equal(form['u'], 'user-1')
  const data = form['d'] as Record<string, unknown>
  t.same(Object.keys(data), ['2', '10', 'user', '__proto__', 'quo"te\\', 'when', 'visits'], 'integer keys first, then in the order set')
  t.same(data['user'], { id: '42', name: 'Ada "the first" Lovelace', tags: ['a', 'ü', '\u2028'] })
  t.same(data['10'], { n: 10 })
  t.same(data['quo"te\\'], [1, { deep: null }])
  t.ok(Object.hasOwn(data, '__proto__'), '"__proto__" is an ordinary key')
  t.same(Object.getOwnPropertyDescriptor(data, '__proto__')?.value, { polluted: true })
  t.equal(data['visits'], 3)
})

t.test('a value changed in place after set() is stored as it is when the response goes', async (t) => {
  const { app, stored } = await storedApp(t)
  app.get('/new', async (request) => {
    const cart = { items: ['apple'] }
    request.session.set('cart', cart)
    cart.items.push('pear')
    request.session.set('empty', {})
    return { ok: true }
  })
  const response = await app.inject('/new')
  const { form, same } = reparsed(await stored(cookieValue(response, 'session-id')))
  t.ok(same)
  t.same(form['d'], { cart: { items: ['apple', 'pear'] }, empty: {} })
})

t.test('a stored session changed in place, with a key deleted and one untouched, is stored as it now is', async (t) => {
  const { app, stored } = await storedApp(t)
  app.get('/new', async (request) => {
    request.session.set('cart', { items: ['apple'] })
    request.session.set('gone', { soon: true })
    request.session.set('kept', { untouched: [1, 2] })
    return { ok: true }
  })
  app.get('/change', async (request) => {
    ;(request.session.get('cart') as { items: string[] }).items.push('pear')
    request.session.get('gone')
    request.session.delete('gone')
    return { ok: true }
  })
  const cookie = cookieValue(await app.inject('/new'), 'session-id')
  const response = await app.inject({ url: '/change', cookies: { 'session-id': cookie as string } })
  t.equal(response.statusCode, 200)
  const { form, same } = reparsed(await stored(cookie))
  t.ok(same)
  t.same(form['d'], { cart: { items: ['apple', 'pear'] }, kept: { untouched: [1, 2] } })
})

t.test('a value changed while an earlier save of the session is still being written is stored by the later save', async (t) => {
  const { app, stored } = await storedApp(t)
  app.get('/new', async (request) => {
    request.session.set('cart', { items: ['apple'] })
    return { ok: true }
  })
  app.get('/twice', async (request) => {
    const cart = request.session.get('cart') as { items: string[] }
    cart.items.push('pear')
    // The second save waits behind the first, which is writing the session.
    const first = request.session.save()
    cart.items.push('plum')
    request.session.set('cart', cart)
    const second = request.session.save()
    await Promise.all([first, second])
    return { ok: true }
  })
  const cookie = cookieValue(await app.inject('/new'), 'session-id')
  const response = await app.inject({ url: '/twice', cookies: { 'session-id': cookie as string } })
  t.equal(response.statusCode, 200)
  const { form, same } = reparsed(await stored(cookie))
  t.ok(same)
  t.same(form['d'], { cart: { items: ['apple', 'pear', 'plum'] } })
})

t.test('on an archive that cannot compare, a save merges into what is stored now, even for a value this request read and left alone', async (t) => {
  const archive = new RecordingArchive(new MemoryArchive())
  const app = await buildApp(t, { mode: 'archive', archive })
  const reached = deferred()
  const gate = deferred()
  app.get('/new', async (request) => {
    request.session.set('cart', { items: ['apple'] })
    request.session.set('visits', 1)
    return { ok: true }
  })
  app.get('/slow', async (request) => {
    request.session.get('cart')
    request.session.set('visits', 2)
    reached.resolve()
    await gate.promise
    return { ok: true }
  })
  app.get('/cart', async (request) => {
    request.session.set('cart', { items: ['pear'] })
    return { ok: true }
  })
  const cookie = cookieValue(await app.inject('/new'), 'session-id') as string
  const slow = app.inject({ url: '/slow', cookies: { 'session-id': cookie } })
  // The slow request has read the session before the other one changes it.
  await reached.promise
  const other = await app.inject({ url: '/cart', cookies: { 'session-id': cookie } })
  t.equal(other.statusCode, 200)
  gate.resolve()
  t.equal((await slow).statusCode, 200)
  const text = await archive.get(cookie.split('.')[0] as string, SESSION_KEY) as string
  const { form, same } = reparsed(text)
  t.ok(same)
  t.same(form['d'], { cart: { items: ['pear'] }, visits: 2 }, 'the other request\'s cart stays, and this one\'s visits are added')
})

t.test('a value set and then changed in place is stored as it is when the response goes, whatever the change', async (t) => {
  const { app, stored } = await storedApp(t)
  const plain = (): Record<string, unknown> => ({ a: { x: 1 }, b: 'two', c: undefined, d: [1, undefined], e: null })
  const cases: Array<[string, () => unknown, (value: any) => void]> = [
    ['nothing changed', plain, () => {}],
    ['an item added to a list', () => [1, 2], (value) => value.push(3)],
    ['an item of a list changed', () => [1, 2], (value) => { value[0] = 9 }],
    ['a missing item of a list given', () => [1, undefined], (value) => { value[1] = 2 }],
    ['an item of a list taken away', () => [1, 2], (value) => { value[0] = undefined }],
    ['a key added deep down', plain, (value) => { value.a.y = 2 }],
    ['a key deleted', plain, (value) => { delete value.b }],
    ['the keys in another order', plain, (value) => { delete value.a; value.a = { x: 1 } }],
    ['an object made a list', plain, (value) => { value.a = [1] }],
    ['a list made an object', plain, (value) => { value.d = { 0: 1 } }],
    ['an object made a number', plain, (value) => { value.a = 5 }],
    ['a string made an object', plain, (value) => { value.b = { s: 'two' } }],
    ['a prototype-less object left alone', () => Object.assign(Object.create(null), { k: 1, m: 2 }), () => {}],
    ['a prototype-less object changed', () => Object.assign(Object.create(null), { k: 1, m: 2 }), (value) => { value.m = 3 }],
    ['an object of one key changed', () => ({ only: 1 }), (value) => { value.only = 2 }],
    ['an object of one key left alone', () => ({ only: 1 }), () => {}]
  ]
  const expected: unknown[] = []
  app.get('/case/:n', async (request) => {
    const [, build, change] = cases[Number((request.params as { n: string }).n)] as typeof cases[number]
    const value = build()
    request.session.set('v', value as never)
    change(value)
    expected.push(JSON.parse(JSON.stringify(value)))
    return { ok: true }
  })
  for (let n = 0; n < cases.length; n++) {
    const response = await app.inject(`/case/${n}`)
    const { form, same } = reparsed(await stored(cookieValue(response, 'session-id')))
    t.ok(same, `${cases[n]?.[0]}: the text is what JSON.stringify writes`)
    t.same((form['d'] as Record<string, unknown>)['v'], expected[n], `${cases[n]?.[0]}: stored as it now is`)
  }
})

t.test('a plain value changed in place into a typed one is stored typed', async (t) => {
  const { app } = await storedApp(t)
  app.get('/new', async (request) => {
    const value: Record<string, unknown> = { a: { x: 1 }, b: 2 }
    request.session.set('v', value)
    value['a'] = new Date(0)
    return { ok: true }
  })
  app.get('/read', async (request) => {
    const value = request.session.get('v') as Record<string, unknown>
    return { isDate: value['a'] instanceof Date, time: (value['a'] as Date).getTime(), b: value['b'] }
  })
  const cookie = cookieValue(await app.inject('/new'), 'session-id') as string
  const read = await app.inject({ url: '/read', cookies: { 'session-id': cookie } })
  t.same(read.json(), { isDate: true, time: 0, b: 2 })
})
