import t from 'tap'
import { buildApp, cookieValue, setCookies } from './helpers/app.js'

t.test('flash messages are kept in order, per key, and read once', async (t) => {
  const app = await buildApp(t)
  app.get('/add', async (request) => {
    request.session.flash('saved')
    request.session.flash({ text: 'twice', level: 'info' })
    request.session.flash('bad input', 'errors')
    return { ok: true }
  })
  app.get('/read', async (request) => ({
    messages: request.session.flashes(),
    errors: request.session.flashes('errors'),
    again: request.session.flashes()
  }))
  const add = await app.inject('/add')
  const read = await app.inject({ url: '/read', cookies: { session: cookieValue(add)! } })
  t.same(read.json(), { messages: ['saved', { text: 'twice', level: 'info' }], errors: ['bad input'], again: [] })
  t.equal(setCookies(read).length, 1, 'reading flashes changes the session')
  const after = await app.inject({ url: '/read', cookies: { session: cookieValue(read)! } })
  t.same(after.json(), { messages: [], errors: [], again: [] })
  t.same(setCookies(after), [], 'no flashes to read: nothing changes')
})

t.test('flashes() of a key set to a single value returns it as one message', async (t) => {
  const app = await buildApp(t)
  app.get('/', async (request) => {
    request.session.set('notice', 'one')
    return { messages: request.session.flashes('notice'), left: request.session.has('notice') }
  })
  t.same((await app.inject('/')).json(), { messages: ['one'], left: false })
})

t.test('a flash that cannot be stored throws FST_SESSION_UNSERIALIZABLE at flash()', async (t) => {
  const app = await buildApp(t)
  app.get('/', async (request) => {
    try {
      request.session.flash(() => 'nope')
      return { code: null }
    } catch (err) {
      return { code: (err as { code: string }).code, flashes: request.session.flashes() }
    }
  })
  const response = await app.inject('/')
  t.same(response.json(), { code: 'FST_SESSION_UNSERIALIZABLE', flashes: [] })
  t.same(setCookies(response), [])
})

t.test('flash() after a single value under the key keeps that value, as flashes() reads it', async (t) => {
  const app = await buildApp(t)
  app.get('/', async (request) => {
    request.session.set('notice', 'one')
    request.session.flash('two', 'notice')
    return request.session.flashes('notice')
  })
  t.same((await app.inject('/')).json(), ['one', 'two'])
})
