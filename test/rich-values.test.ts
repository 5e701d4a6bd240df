import t from 'tap'
import { SESSION_KEY } from '../lib/archive-mode.js'
import { buildApp, cookieValue, setCookies } from './helpers/app.js'
import { ironUnseal } from './helpers/iron.js'
import { carry, roundTrip, sessionModes } from './helpers/session-modes.js'

const when = new Date('2024-02-29T12:34:56.789Z')

for (const mode of sessionModes) {
  t.test(`${mode.name}: Date, Map, Set, bigint, URL and typed arrays round-trip exactly, nested anywhere`, async (t) => {
    const read = await roundTrip(t, mode, {
      when,
      scores: new Map([['zoe', 3], ['adam', 1], ['mia', 2]]),
      tags: new Set(['b', 'a']),
      big: 2n ** 64n + 12345n,
      home: new URL('https://example.com/päth?q=1#top'),
      bytes: new Uint8Array([0, 127, 128, 255]),
      samples: new Float32Array([1.5, -2.25]),
      nested: {
        list: [{ at: new Date(0) }, new Map([[new Date(1), new Set([1n])]])],
        plain: { a: 1, b: [true, null, 'x'] }
      }
    })
    t.ok(read['when'] instanceof Date)
    t.equal((read['when'] as Date).getTime(), when.getTime())

    const scores = read['scores'] as Map<string, number>
    t.ok(scores instanceof Map)
    t.same([...scores], [['zoe', 3], ['adam', 1], ['mia', 2]], 'entries and their order')

    const tags = read['tags'] as Set<string>
    t.ok(tags instanceof Set)
    t.same([...tags], ['b', 'a'])

    t.equal(read['big'], 2n ** 64n + 12345n)
    t.equal(typeof read['big'], 'bigint')

    t.ok(read['home'] instanceof URL)
    t.equal((read['home'] as URL).href, 'https://example.com/p%C3%A4th?q=1#top')

    t.ok(read['bytes'] instanceof Uint8Array)
    t.same([...(read['bytes'] as Uint8Array)], [0, 127, 128, 255])
    t.ok(read['samples'] instanceof Float32Array)
    t.same([...(read['samples'] as Float32Array)], [1.5, -2.25])

    const nested = read['nested'] as { list: [{ at: Date }, Map<Date, Set<bigint>>], plain: unknown }
    t.ok(nested.list[0].at instanceof Date)
    t.equal(nested.list[0].at.getTime(), 0)
    const [key, set] = [...nested.list[1]][0]!
    t.ok(key instanceof Date)
    t.equal(key.getTime(), 1)
    t.same([...set], [1n])
    t.same(nested.plain, { a: 1, b: [true, null, 'x'] })
  })

  t.test(`${mode.name}: a stored Date stays a Date while later requests change other keys`, async (t) => {
    const { options } = await mode.setup(t)
    const app = await buildApp(t, options)
    app.post('/login', async (request) => {
      request.session.set('since', when)
      return { ok: true }
    })
    app.post('/visit', async (request) => {
      request.session.set('visits', ((request.session.get('visits') as number | undefined) ?? 0) + 1)
      return { ok: true }
    })
    app.get('/since', async (request) => {
      const since = request.session.get('since')
      return { isDate: since instanceof Date, time: (since as Date).getTime(), visits: request.session.get('visits') }
    })
    let cookies = carry(mode, await app.inject({ method: 'POST', url: '/login' }))
    for (let i = 0; i < 2; i++) {
      const visit = await app.inject({ method: 'POST', url: '/visit', cookies })
      cookies = { ...cookies, ...carry(mode, visit) }
    }
    const response = await app.inject({ url: '/since', cookies })
    t.same(response.json(), { isDate: true, time: when.getTime(), visits: 2 })
  })

  t.test(`${mode.name}: a value that cannot be stored fails at set() and nothing is stored`, async (t) => {
    class Unregistered {
      x = 1
    }
    const cyclic: Record<string, unknown> = {}
    cyclic['self'] = new Map([['back', cyclic]])
    let tooDeep: unknown = 'leaf'
    for (let i = 0; i < 65; i++) tooDeep = new Set([tooDeep])
    const refused: Record<string, unknown> = {
      'an unregistered class instance': new Unregistered(),
      'an unregistered class instance in a Map': new Map([['k', new Unregistered()]]),
      'a function in a Set': new Set([() => 1]),
      'a symbol in an object in a Map': new Map([['k', { s: Symbol('s') }]]),
      'a cycle through a Map': cyclic,
      'nesting deeper than 64 levels of Sets': tooDeep
    }
    const { options } = await mode.setup(t)
    const app = await buildApp(t, options)
    app.post('/:name', async (request) => {
      const { name } = request.params as { name: string }
      try {
        request.session.set('cart-42', refused[name])
        return { code: null }
      } catch (err) {
        return { code: (err as { code: string }).code, namesKey: (err as Error).message.includes('cart-42'), has: request.session.has('cart-42') }
      }
    })
    for (const name of Object.keys(refused)) {
      const response = await app.inject({ method: 'POST', url: `/${encodeURIComponent(name)}` })
      t.same(response.json(), { code: 'FST_SESSION_UNSERIALIZABLE', namesKey: true, has: false }, name)
      t.same(setCookies(response), [], `${name}: no cookie`)
    }
  })
}

t.test('plain JSON is stored as it is; a value beyond JSON is stored tagged', async (t) => {
  const app = await buildApp(t)
  app.get('/', async (request) => {
    request.session.set('user', { id: '42', name: 'Ada' })
    request.session.set('since', new Date(0))
    return { ok: true }
  })
  const { d } = await ironUnseal(cookieValue(await app.inject('/'))!) as { d: Record<string, unknown> }
  t.same(d['user'], { id: '42', name: 'Ada' }, 'no wrapper around plain data')
  t.same(d['since'], { '~': { '~': 'Date', v: 0 } })
})

t.test('the archive stores plain JSON as it is and a value beyond JSON tagged', async (t) => {
  const [, memory] = sessionModes
  const { options, archive } = await memory!.setup(t)
  const app = await buildApp(t, options)
  app.get('/', async (request) => {
    request.session.set('user', { id: '42' })
    request.session.set('big', 10n)
    return { id: request.session.id }
  })
  const { id } = (await app.inject('/')).json() as { id: string }
  const stored = JSON.parse(await archive!.get(id, SESSION_KEY) as string)
  t.same(stored.d, { user: { id: '42' }, big: { '~': { '~': 'BigInt', v: '10' } } })
})
