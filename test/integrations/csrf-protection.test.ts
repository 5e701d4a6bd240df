import fastifyCsrfProtection, { type FastifyCsrfProtectionOptions } from '@fastify/csrf-protection'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import t, { type Test } from 'tap'
import { buildApp, cookieValue, setCookies } from '../helpers/app.js'
import { ARCHIVE_MODE, COOKIE_MODE, type Setup } from '../helpers/setups.js'

const SETUPS: readonly Setup[] = [COOKIE_MODE, ARCHIVE_MODE]

/** A form that hands out a token, a POST it protects, and a login that stores the user. */
async function csrfApp (t: Test, setup: Setup, csrf: FastifyCsrfProtectionOptions): Promise<FastifyInstance> {
  const app = await buildApp(t, setup.options())
  await app.register(fastifyCsrfProtection, csrf)
  app.post('/login', async (request) => {
    const { user } = request.query as { user: string }
    request.session.set('user', user)
    return 'ok'
  })
  app.get('/form', async (request, reply) => {
    const user = request.session.get('user') as string | undefined
    return { token: user === undefined ? reply.generateCsrf() : reply.generateCsrf({ userInfo: user }) }
  })
  app.post('/transfer', { onRequest: app.csrfProtection }, async () => ({ done: true }))
  app.get('/options', async (request) => request.session.options())
  return app
}

function cookieOf (setup: Setup, response: LightMyRequestResponse): string {
  const value = cookieValue(response, setup.name)
  if (value === undefined) throw new Error('the response sets no session cookie')
  return value
}

for (const setup of SETUPS) {
  t.test(`${setup.label}: with sessionPlugin '@fastify/secure-session' the secret lives in the session and protects a POST`, async (t) => {
    const app = await csrfApp(t, setup, { sessionPlugin: '@fastify/secure-session' })
    const form = await app.inject({ url: '/form' })
    const { token } = form.json<{ token: string }>()
    t.type(token, 'string')
    const cookie = cookieOf(setup, form)
    const cookies = { [setup.name]: cookie }

    const again = await app.inject({ url: '/form', cookies })
    t.not(again.json().token, token, 'each token is new')
    t.same(setCookies(again), [], 'but the secret is kept, so the session is not rewritten')

    const accepted = await app.inject({ method: 'POST', url: '/transfer', cookies, headers: { 'x-csrf-token': token } })
    t.equal(accepted.statusCode, 200)
    t.same(accepted.json(), { done: true }, 'a POST with the token is accepted')
    t.equal((await app.inject({ method: 'POST', url: '/transfer', cookies, headers: { 'x-csrf-token': again.json().token } })).statusCode, 200,
      'and so is one with any token of the same session')

    const missing = await app.inject({ method: 'POST', url: '/transfer', cookies })
    t.equal(missing.statusCode, 403)
    t.equal(missing.json().code, 'FST_CSRF_INVALID_TOKEN', 'a POST without the token is refused')

    const other = (await app.inject({ url: '/form' })).json<{ token: string }>().token
    const foreign = await app.inject({ method: 'POST', url: '/transfer', cookies, headers: { 'x-csrf-token': other } })
    t.equal(foreign.statusCode, 403)
    t.equal(foreign.json().code, 'FST_CSRF_INVALID_TOKEN', 'a token from another session is refused')

    const noSession = await app.inject({ method: 'POST', url: '/transfer', headers: { 'x-csrf-token': token } })
    t.equal(noSession.statusCode, 403)
    t.equal(noSession.json().code, 'FST_CSRF_MISSING_SECRET', 'a token without its session is refused')
  })

  t.test(`${setup.label}: userInfo tokens are bound to the user; generateCsrf({ userInfo }) passes its options to session.options(), which keeps maxAge`, async (t) => {
    const app = await csrfApp(t, setup, {
      sessionPlugin: '@fastify/secure-session',
      getUserInfo: (request) => request.session.get('user') as string
    })
    let cookies = { [setup.name]: cookieOf(setup, await app.inject({ method: 'POST', url: '/login?user=ada' })) }
    // Cookie mode re-seals the session each time it changes; archive mode keeps the id.
    const keep = (response: LightMyRequestResponse): LightMyRequestResponse => {
      const value = cookieValue(response, setup.name)
      if (value !== undefined) cookies = { [setup.name]: value }
      return response
    }
    const form = keep(await app.inject({ url: '/form', cookies }))
    t.equal(form.statusCode, 200, 'session.options({ userInfo }) is accepted')
    const { token } = form.json<{ token: string }>()
    t.same((await app.inject({ url: '/options', cookies })).json(), { maxAge: 86400 }, 'and changes no option of the session')

    t.equal((await app.inject({ method: 'POST', url: '/transfer', cookies, headers: { 'x-csrf-token': token } })).statusCode, 200,
      "the user's token is accepted")

    // The same session, now another user's: the token made for ada no longer verifies.
    keep(await app.inject({ method: 'POST', url: '/login?user=grace', cookies }))
    const refused = await app.inject({ method: 'POST', url: '/transfer', cookies, headers: { 'x-csrf-token': token } })
    t.equal(refused.statusCode, 403)
    t.equal(refused.json().code, 'FST_CSRF_INVALID_TOKEN', "another user's token is refused in the same session")
    const graceToken = keep(await app.inject({ url: '/form', cookies })).json<{ token: string }>().token
    t.equal((await app.inject({ method: 'POST', url: '/transfer', cookies, headers: { 'x-csrf-token': graceToken } })).statusCode, 200,
      "and the new user's token is accepted")
  })

  t.test(`${setup.label}: sessionPlugin '@fastify/session' fails loudly: its property write is refused with FST_SESSION_PROPERTY_WRITE`, async (t) => {
    const app = await csrfApp(t, setup, { sessionPlugin: '@fastify/session' })
    const form = await app.inject({ url: '/form' })
    t.equal(form.statusCode, 500)
    t.equal(form.json().code, 'FST_SESSION_PROPERTY_WRITE', 'generateCsrf() throws rather than handing out a token it cannot check')
    t.same(setCookies(form), [], 'and stores nothing')
  })
}
