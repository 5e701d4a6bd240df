import fastifyFlash from '@fastify/flash'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import t, { type Test } from 'tap'
import { buildApp, cookieValue, setCookies } from '../helpers/app.js'
import { ARCHIVE_MODE, COOKIE_MODE, type Setup } from '../helpers/setups.js'

const SETUPS: readonly Setup[] = [COOKIE_MODE, ARCHIVE_MODE]

/** A form that flashes and redirects, a page that reads the flashes, a visit that stores something. */
async function flashApp (t: Test, setup: Setup): Promise<FastifyInstance> {
  const app = await buildApp(t, setup.options())
  await app.register(fastifyFlash)
  app.post('/save', async (request, reply) => {
    request.flash('info', 'saved')
    request.flash('info', 'hello %s', 'ada')
    request.flash('error', ['one', 'two'])
    request.session.flash('built-in')
    return reply.redirect('/')
  })
  app.get('/', async (request, reply) => ({ info: reply.flash('info'), builtIn: request.session.flashes() }))
  app.get('/all', async (request, reply) => ({ all: reply.flash(), builtIn: request.session.flashes() }))
  app.get('/built-in', async (request) => ({ builtIn: request.session.flashes() }))
  app.get('/data', async (request) => request.session.data())
  app.post('/visit', async (request) => { request.session.set('visits', 1); return 'ok' })
  return app
}

/** Sends requests with the session cookie each response left, as a browser would. */
function browser (app: FastifyInstance, setup: Setup) {
  let cookie: string | undefined
  return async (method: 'GET' | 'POST', url: string): Promise<LightMyRequestResponse> => {
    const response = await app.inject({ method, url, cookies: cookie === undefined ? {} : { [setup.name]: cookie } })
    cookie = cookieValue(response, setup.name) ?? cookie
    return response
  }
}

for (const setup of SETUPS) {
  t.test(`${setup.label}: request.flash() messages survive one redirect and are read once by reply.flash(), next to the built-in flash()`, async (t) => {
    const app = await flashApp(t, setup)
    const send = browser(app, setup)
    const saved = await send('POST', '/save')
    t.equal(saved.statusCode, 302)
    t.equal(saved.headers.location, '/')
    t.equal(setCookies(saved).length, 1, 'the redirect carries the session')

    const page = await send('GET', '/')
    t.same(page.json(), { info: ['saved', 'hello ada'], builtIn: ['built-in'] }, 'both kinds of flash are read after the redirect')
    t.same((await send('GET', '/data')).json(), { flash: { error: ['one', 'two'] } }, 'reading one type leaves the others')

    const all = await send('GET', '/all')
    t.same(all.json(), { all: { error: ['one', 'two'] }, builtIn: [] })
    t.same((await send('GET', '/')).json(), { info: [], builtIn: [] }, 'each message is read once')
  })

  t.test(`${setup.label}: reading flashes on a request that has none sends no Set-Cookie`, async (t) => {
    const app = await flashApp(t, setup)
    const send = browser(app, setup)
    await send('POST', '/save')
    await send('GET', '/all')
    t.same((await send('GET', '/data')).json(), { flash: {} }, '@fastify/flash leaves an empty object once read')
    for (const url of ['/', '/all', '/built-in']) {
      const read = await send('GET', url)
      t.equal(read.statusCode, 200)
      t.same(setCookies(read), [], `${url}: writing back the same empty flash changes nothing, so nothing is rewritten`)
    }
  })

  t.test(`${setup.label}: with no flash key yet, the built-in flashes() writes nothing, while reply.flash() stores an empty flash object`, async (t) => {
    const app = await flashApp(t, setup)
    const fresh = await app.inject({ url: '/built-in' })
    t.same(setCookies(fresh), [], 'a visitor without a session gets none from flashes()')

    const send = browser(app, setup)
    await send('POST', '/visit')
    t.same(setCookies(await send('GET', '/built-in')), [], 'nor does a session that has no flash')
    const first = await send('GET', '/')
    t.same(first.json(), { info: [], builtIn: [] })
    t.same((await send('GET', '/data')).json(), { visits: 1, flash: {} }, 'reply.flash() sets flash: {}, a new key')
    t.equal(setCookies(first).length, 1, 'so the session is stored once, and its cookie sent')
    t.same(setCookies(await send('GET', '/')), [], 'and never again')

    const visitor = await app.inject({ url: '/' })
    t.equal(setCookies(visitor).length, 1, 'for a visitor without a session, reply.flash() starts one')
  })
}
