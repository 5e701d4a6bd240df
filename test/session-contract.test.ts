import t from 'tap'
import { addSessionRoutes, buildApp, cookieValue, setCookies } from './helpers/app.js'

t.test('get, set, has and delete, and what each does to changed', async (t) => {
  const app = await buildApp(t)
  app.get('/', async (request) => {
    const session = request.session
    const steps: unknown[] = [session.changed, session.has('a'), session.get('a') ?? null]
    session.set('a', 1)
    steps.push(session.changed, session.has('a'), session.get('a'))
    session.delete('a')
    steps.push(session.has('a'), session.get('a') ?? null)
    return { steps, mode: session.mode, id: session.id ?? null }
  })
  const response = await app.inject('/')
  t.same(response.json(), { steps: [false, false, null, true, true, 1, false, null], mode: 'cookie', id: null })
})

t.test('set(key, undefined) deletes the key; deleting a missing key changes nothing', async (t) => {
  const app = await buildApp(t)
  addSessionRoutes(app)
  app.get('/unset', async (request) => {
    request.session.set('user', undefined)
    return { has: request.session.has('user') }
  })
  app.get('/delete-missing', async (request) => {
    request.session.delete('missing')
    return { changed: request.session.changed }
  })
  const token = cookieValue(await app.inject('/write'))!
  const unset = await app.inject({ url: '/unset', cookies: { session: token } })
  t.same(unset.json(), { has: false })
  t.same((await app.inject({ url: '/read', cookies: { session: cookieValue(unset)! } })).json(), { isNew: false, user: null })
  const missing = await app.inject({ url: '/delete-missing', cookies: { session: token } })
  t.same(missing.json(), { changed: false })
  t.same(setCookies(missing), [])
})

t.test('load() drops unsaved changes, and reads what save() stored', async (t) => {
  const app = await buildApp(t)
  addSessionRoutes(app)
  app.get('/reload', async (request) => {
    request.session.set('user', 'mallory')
    await request.session.load()
    const afterLoad = { user: request.session.get('user'), changed: request.session.changed }
    request.session.set('user', 'grace')
    await request.session.save()
    request.session.set('user', 'unsaved')
    await request.session.load()
    return { afterLoad, afterSave: request.session.get('user'), isNew: request.session.isNew }
  })
  const token = cookieValue(await app.inject('/write'))!
  const response = await app.inject({ url: '/reload', cookies: { session: token } })
  t.same(response.json(), { afterLoad: { user: 'ada', changed: false }, afterSave: 'grace', isNew: false })
  t.equal(setCookies(response).length, 1)
  t.same((await app.inject({ url: '/read', cookies: { session: cookieValue(response)! } })).json(), { isNew: false, user: 'grace' })
})

t.test('save() of an unchanged new session sends an empty session', async (t) => {
  const app = await buildApp(t)
  addSessionRoutes(app)
  app.get('/save', async (request) => {
    await request.session.save()
    return { ok: true }
  })
  const response = await app.inject('/save')
  t.equal(setCookies(response).length, 1)
  t.same((await app.inject({ url: '/read', cookies: { session: cookieValue(response)! } })).json(), { isNew: false, user: null })
})
