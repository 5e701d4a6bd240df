import t from 'tap'
import { addSessionRoutes, buildApp, cookieValue, LogCapture, OTHER_SECRET, SECRET, setCookies } from './helpers/app.js'
import { ironSeal, ironUnseal, sessionPayload, tokenFields } from './helpers/iron.js'

const NEW_SECRET = SECRET
const OLD_SECRET = OTHER_SECRET

t.test('a cookie sealed with an older secret is accepted and resealed with the first secret in the same response', async (t) => {
  const old = await buildApp(t, { secret: OLD_SECRET })
  addSessionRoutes(old)
  const oldToken = cookieValue(await old.inject('/write?user=ada'))!
  const { c: created } = await ironUnseal(oldToken, OLD_SECRET) as { c: number }

  const app = await buildApp(t, { secret: [NEW_SECRET, OLD_SECRET] })
  addSessionRoutes(app)
  const response = await app.inject({ url: '/read', cookies: { session: oldToken } })
  t.same(response.json(), { isNew: false, user: 'ada' })
  t.equal(setCookies(response).length, 1, 'a read that found an old seal re-issues the cookie')
  const resealed = cookieValue(response)!
  t.match(await ironUnseal(resealed, NEW_SECRET), { c: created, d: { user: 'ada' } }, 'with the first secret, same session')
  await t.rejects(ironUnseal(resealed, OLD_SECRET), 'and no longer with the old one')

  const again = await app.inject({ url: '/read', cookies: { session: resealed } })
  t.same(again.json(), { isNew: false, user: 'ada' })
  t.same(setCookies(again), [], 'a cookie sealed with the first secret is not re-issued on a read')
})

t.test('a token iron-webcrypto sealed with an older secret is accepted and resealed', async (t) => {
  const app = await buildApp(t, { secret: [NEW_SECRET, OLD_SECRET] })
  addSessionRoutes(app)
  const token = await ironSeal(sessionPayload({ user: 'grace' }), OLD_SECRET)
  const response = await app.inject({ url: '/read', cookies: { session: token } })
  t.same(response.json(), { isNew: false, user: 'grace' })
  t.match(await ironUnseal(cookieValue(response)!, NEW_SECRET), { d: { user: 'grace' } })
})

t.test('a token with salts other than the secret\'s own is accepted and resealed once with the secret\'s own salts', async (t) => {
  const app = await buildApp(t)
  addSessionRoutes(app)
  const own = tokenFields(cookieValue(await app.inject('/write?user=ada'))!)
  // iron-webcrypto's random salts, as any iron token has them.
  const token = await ironSeal(sessionPayload({ user: 'grace' }))
  t.not(tokenFields(token)[2], own[2])
  const response = await app.inject({ url: '/read', cookies: { session: token } })
  t.same(response.json(), { isNew: false, user: 'grace' })
  t.equal(setCookies(response).length, 1, 'a read re-issues the cookie')
  const resealed = cookieValue(response)!
  t.same([tokenFields(resealed)[2], tokenFields(resealed)[6]], [own[2], own[6]], 'with the secret\'s own salts')
  t.match(await ironUnseal(resealed), { d: { user: 'grace' } }, 'the same session')
  const again = await app.inject({ url: '/read', cookies: { session: resealed } })
  t.same(again.json(), { isNew: false, user: 'grace' })
  t.same(setCookies(again), [], 'and it is not re-issued again')
})

t.test('once the old secret is dropped, its cookies are fresh sessions', async (t) => {
  const logs = new LogCapture()
  const old = await buildApp(t, { secret: [OLD_SECRET, NEW_SECRET] })
  addSessionRoutes(old)
  const oldToken = cookieValue(await old.inject('/write'))!
  const app = await buildApp(t, { secret: NEW_SECRET }, logs.server)
  addSessionRoutes(app)
  const response = await app.inject({ url: '/read', cookies: { session: oldToken } })
  t.same(response.json(), { isNew: true, user: null })
  t.equal(logs.withCode('FST_SESSION_COOKIE_REJECTED').length, 1)
})
