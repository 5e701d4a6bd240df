import fastifyPassport from '@fastify/passport'
import type { FastifyInstance, FastifyReply, FastifyRequest, LightMyRequestResponse } from 'fastify'
import { Strategy as LocalStrategy } from 'passport-local'
import t, { type Test } from 'tap'
import { MemoryArchive, type FastifySessionsOptions } from '../../lib/index.js'
import { buildApp, cookieValue } from '../helpers/app.js'

declare module 'fastify' {
  interface PassportUser { id: string, name: string }
}

const { Authenticator } = fastifyPassport

interface Setup {
  readonly label: string
  readonly name: string
  /** Whether a cookie taken before logout is worth nothing after it. */
  readonly serverSide: boolean
  readonly options: () => Partial<FastifySessionsOptions>
}

const SETUPS: readonly Setup[] = [
  { label: 'cookie mode', name: 'session', serverSide: false, options: () => ({}) },
  { label: 'revocable cookie mode', name: 'session', serverSide: true, options: () => ({ mode: 'cookie', revocable: true, archive: new MemoryArchive() }) },
  { label: 'archive mode', name: 'session-id', serverSide: true, options: () => ({ mode: 'archive', archive: new MemoryArchive() }) }
]

const USERS = new Map([['ada', { id: 'u1', name: 'Ada', password: 'lovelace' }]])

/** An app with @fastify/passport's own session manager over this plugin, and a local strategy. */
async function passportApp (t: Test, setup: Setup, clearSessionIgnoreFields: string[] = []): Promise<FastifyInstance> {
  const app = await buildApp(t, setup.options())
  const passport = new Authenticator({ clearSessionIgnoreFields })
  // @fastify/passport flashes a strategy's info only when it names its type.
  passport.use('local', new LocalStrategy((username, password, done) => {
    const user = USERS.get(username)
    if (user === undefined || user.password !== password) {
      const info = { type: 'error', message: 'wrong name or password' }
      done(null, false, info)
      return
    }
    const info = { type: 'success', message: `welcome ${user.name}` }
    done(null, { id: user.id, name: user.name }, info)
  }))
  passport.registerUserSerializer(async (user: { id: string }) => user.id)
  passport.registerUserDeserializer(async (id: string) => {
    const user = [...USERS.values()].find((candidate) => candidate.id === id)
    return user === undefined ? null : { id: user.id, name: user.name }
  })
  await app.register(passport.initialize())
  await app.register(passport.secureSession())

  const loggedIn = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (!request.isAuthenticated()) await reply.code(401).send({ error: 'log in first' })
  }
  app.post('/cart', async (request) => { request.session.set('cart', ['tea']); return 'ok' })
  app.post('/login', { preValidation: passport.authenticate('local') }, async (request) => ({ user: request.user }))
  app.post('/login-keep', { preValidation: passport.authenticate('local', { keepSessionInfo: true }) }, async (request) => ({ user: request.user }))
  app.post('/login-form', {
    preValidation: passport.authenticate('local', {
      successReturnToOrRedirect: '/home',
      successFlash: true,
      failureRedirect: '/login-page',
      failureFlash: true
    })
  }, async (_request, reply) => reply) // passport has already redirected: the handler must not answer again
  app.get('/login-page', async (_request, reply) => ({ errors: reply.flash('error') }))
  app.get('/orders', async (request, reply) => {
    if (request.isAuthenticated()) return { user: request.user, welcome: reply.flash('success') }
    request.session.set('returnTo', '/orders')
    return reply.redirect('/login-page')
  })
  app.get('/private', { preValidation: loggedIn }, async (request) => ({ user: request.user }))
  app.get('/own-keys', async (request) => ({ keys: Object.keys(request.session), has: request.session.has('cart') }))
  app.get('/data', async (request) => ({ isNew: request.session.isNew, data: request.session.data() }))
  app.post('/logout', async (request) => {
    await request.logout()
    return { user: request.user ?? null, data: request.session.data() }
  })
  return app
}

const ADA = { username: 'ada', password: 'lovelace' }

function cookieOf (setup: Setup, response: LightMyRequestResponse): string {
  const value = cookieValue(response, setup.name)
  if (value === undefined) throw new Error('the response sets no session cookie')
  return value
}

for (const setup of SETUPS) {
  t.test(`${setup.label}: a local login, a protected route, request.user deserialised, then logout`, async (t) => {
    const app = await passportApp(t, setup)
    const send = (method: 'GET' | 'POST', url: string, cookie?: string, body?: object) =>
      app.inject({ method, url, ...(body === undefined ? {} : { payload: body }), cookies: cookie === undefined ? {} : { [setup.name]: cookie } })

    const anonymous = cookieOf(setup, await send('POST', '/cart'))
    t.equal((await send('GET', '/private', anonymous)).statusCode, 401, 'refused before login')
    t.equal((await send('POST', '/login', anonymous, { username: 'ada', password: 'wrong' })).statusCode, 401, 'a wrong password logs no one in')

    const login = await send('POST', '/login', anonymous, ADA)
    t.equal(login.statusCode, 200)
    t.same(login.json(), { user: { id: 'u1', name: 'Ada' } })
    const loggedIn = cookieOf(setup, login)
    t.not(loggedIn, anonymous, 'login issues a new cookie')
    t.same((await send('GET', '/data', loggedIn)).json(), { isNew: false, data: { passport: 'u1' } },
      'the session holds the serialised user id, and the pre-login data is gone (clearSessionOnLogin)')

    const mine = await send('GET', '/private', loggedIn)
    t.equal(mine.statusCode, 200, 'allowed after login')
    t.same(mine.json(), { user: { id: 'u1', name: 'Ada' } }, 'request.user is deserialised from the session')

    const logout = await send('POST', '/logout', loggedIn)
    t.same(logout.json(), { user: null, data: {} }, 'no passport key, nothing logged in, is left in the session')
    const afterLogout = cookieValue(logout, setup.name)
    t.ok(afterLogout !== undefined && afterLogout !== '' && afterLogout !== loggedIn, 'logout regenerates the session: a new cookie')
    t.equal((await send('GET', '/private', afterLogout)).statusCode, 401, 'the cookie after logout is logged out')
    t.same((await send('GET', '/data', afterLogout)).json().data, {})

    const replayedLogin = await send('GET', '/private', loggedIn)
    const replayedAnonymous = await send('GET', '/data', anonymous)
    if (setup.serverSide) {
      t.equal(replayedLogin.statusCode, 401, 'the logged-in cookie replayed after logout is worth nothing')
      t.same((await send('GET', '/data', loggedIn)).json(), { isNew: true, data: {} }, 'it opens a fresh session')
      t.same(replayedAnonymous.json(), { isNew: true, data: {} }, 'the pre-login cookie opens a fresh session too')
    } else {
      t.equal(replayedLogin.statusCode, 200,
        'a stateless cookie cannot be taken back: the logged-in cookie replayed after logout still logs in until it expires (use revocable: true)')
      t.same(replayedAnonymous.json(), { isNew: false, data: { cart: ['tea'] } },
        'the pre-login cookie still opens the anonymous session it sealed, never a logged-in one')
    }
  })

  t.test(`${setup.label}: with keepSessionInfo: true @fastify/passport finds no keys to keep, as it lists them with Object.keys(request.session)`, async (t) => {
    const app = await passportApp(t, setup)
    const anonymous = cookieOf(setup, await app.inject({ method: 'POST', url: '/cart' }))
    t.same((await app.inject({ url: '/own-keys', cookies: { [setup.name]: anonymous } })).json(), { keys: [], has: true },
      'the session holds a cart, but its data are no own properties of request.session')
    const login = await app.inject({ method: 'POST', url: '/login-keep', payload: ADA, cookies: { [setup.name]: anonymous } })
    t.equal(login.statusCode, 200)
    t.same((await app.inject({ url: '/data', cookies: { [setup.name]: cookieOf(setup, login) } })).json().data, { passport: 'u1' },
      'the cart is not carried over: list the keys to keep in clearSessionIgnoreFields instead')
  })

  t.test(`${setup.label}: clearSessionIgnoreFields keeps the listed pre-login data through login and logout`, async (t) => {
    const app = await passportApp(t, setup, ['cart'])
    const anonymous = cookieOf(setup, await app.inject({ method: 'POST', url: '/cart' }))
    const login = await app.inject({ method: 'POST', url: '/login', payload: ADA, cookies: { [setup.name]: anonymous } })
    const loggedIn = cookieOf(setup, login)
    t.not(loggedIn, anonymous, 'the session is still regenerated')
    t.same((await app.inject({ url: '/data', cookies: { [setup.name]: loggedIn } })).json().data, { cart: ['tea'], passport: 'u1' })
    if (setup.serverSide) {
      t.same((await app.inject({ url: '/data', cookies: { [setup.name]: anonymous } })).json(), { isNew: true, data: {} }, 'the pre-login cookie is retired')
    }
    const logout = await app.inject({ method: 'POST', url: '/logout', cookies: { [setup.name]: loggedIn } })
    t.same(logout.json(), { user: null, data: {} }, 'logout regenerates without keeping anything (clearSessionOnLogin)')
  })

  t.test(`${setup.label}: redirects with flashes: a failed login flashes its error to the login page, a successful one returns to the page that asked`, async (t) => {
    // The success flash is set before login regenerates the session: it is kept like returnTo.
    const app = await passportApp(t, setup, ['returnTo', 'flash'])
    let cookie: string | undefined
    const send = async (method: 'GET' | 'POST', url: string, body?: object): Promise<LightMyRequestResponse> => {
      const response = await app.inject({ method, url, ...(body === undefined ? {} : { payload: body }), cookies: cookie === undefined ? {} : { [setup.name]: cookie } })
      cookie = cookieValue(response, setup.name) ?? cookie
      return response
    }
    const asked = await send('GET', '/orders')
    t.equal(asked.headers.location, '/login-page', 'the protected page sends the visitor to log in')

    const failed = await send('POST', '/login-form', { username: 'ada', password: 'wrong' })
    t.equal(failed.statusCode, 302)
    t.equal(failed.headers.location, '/login-page')
    t.same((await send('GET', '/login-page')).json(), { errors: ['wrong name or password'] }, "the strategy's message, flashed")
    t.same((await send('GET', '/login-page')).json(), { errors: [] }, 'once')

    const logged = await send('POST', '/login-form', ADA)
    t.equal(logged.headers.location, '/orders', 'back to the page that asked (returnTo kept through regenerate by clearSessionIgnoreFields)')
    t.same((await send('GET', '/orders')).json(), { user: { id: 'u1', name: 'Ada' }, welcome: ['welcome Ada'] })
    const data = (await send('GET', '/data')).json().data as Record<string, unknown>
    t.notOk('returnTo' in data, 'returnTo is removed once used')
    t.equal(data['passport'], 'u1')
  })
}
