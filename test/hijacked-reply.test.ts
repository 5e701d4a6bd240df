import t from 'tap'
import { addSessionRoutes, buildApp, cookieValue, setCookies } from './helpers/app.js'

t.test('a hijacked reply that saves before writing sends the session cookie', async (t) => {
  const app = await buildApp(t)
  addSessionRoutes(app)
  app.get('/events', async (request, reply) => {
    reply.hijack()
    request.session.set('user', 'ada')
    await request.session.save()
    reply.raw.writeHead(200, { 'content-type': 'text/event-stream' })
    reply.raw.end('data: hello\n\n')
  })
  const response = await app.inject('/events')
  t.equal(response.body, 'data: hello\n\n')
  t.equal(setCookies(response).length, 1)
  t.same((await app.inject({ url: '/read', cookies: { session: cookieValue(response)! } })).json(), { isNew: false, user: 'ada' })
})

t.test('a hijacked reply keeps the other cookies it set on the raw response', async (t) => {
  const app = await buildApp(t)
  app.get('/events', async (request, reply) => {
    reply.hijack()
    reply.raw.setHeader('set-cookie', 'theme=dark')
    request.session.set('user', 'ada')
    await request.session.save()
    await request.session.save()
    reply.raw.writeHead(200)
    reply.raw.end()
  })
  const cookies = setCookies(await app.inject('/events'))
  t.equal(cookies.length, 2, 'a second save replaces the first cookie')
  t.equal(cookies[0], 'theme=dark')
  t.match(cookies[1], /^session=Fe26\.2\*/)
})

t.test('a hijacked reply that destroys the session sends the clearing cookie', async (t) => {
  const app = await buildApp(t)
  addSessionRoutes(app)
  app.get('/logout', async (request, reply) => {
    reply.hijack()
    await request.session.destroy()
    reply.raw.writeHead(204)
    reply.raw.end()
  })
  const token = cookieValue(await app.inject('/write'))!
  t.match(setCookies(await app.inject({ url: '/logout', cookies: { session: token } })), [/^session=; Max-Age=0;/])
})

t.test('save() or destroy() after the headers were sent throws FST_SESSION_HEADERS_SENT', async (t) => {
  const app = await buildApp(t)
  addSessionRoutes(app)
  app.get('/late', async (request, reply) => {
    reply.hijack()
    reply.raw.writeHead(200, { 'content-type': 'application/json' })
    request.session.set('user', 'ada')
    const codes: string[] = []
    for (const call of [() => request.session.save(), () => request.session.destroy()]) {
      try {
        await call()
        codes.push('none')
      } catch (err) {
        codes.push((err as { code: string }).code)
      }
    }
    reply.raw.end(JSON.stringify(codes))
  })
  const token = cookieValue(await app.inject('/write'))!
  const response = await app.inject({ url: '/late', cookies: { session: token } })
  t.same(response.json(), ['FST_SESSION_HEADERS_SENT', 'FST_SESSION_HEADERS_SENT'])
  t.same(setCookies(response), [])
})

t.test('an explicit save() in a normal reply sends exactly one Set-Cookie for the session', async (t) => {
  const app = await buildApp(t)
  addSessionRoutes(app)
  app.get('/save', async (request) => {
    request.session.set('user', 'ada')
    await request.session.save()
    return { ok: true }
  })
  app.get('/save-then-change', async (request) => {
    request.session.set('user', 'ada')
    await request.session.save()
    request.session.set('user', 'grace')
    return { ok: true }
  })
  t.equal(setCookies(await app.inject('/save')).length, 1)
  const changed = await app.inject('/save-then-change')
  t.equal(setCookies(changed).length, 1)
  t.same((await app.inject({ url: '/read', cookies: { session: cookieValue(changed)! } })).json(), { isNew: false, user: 'grace' },
    'the cookie sent carries the last change')
})

t.test('an explicit save() in a normal reply sends the raw response\'s other cookies with the session cookie', async (t) => {
  const app = await buildApp(t)
  app.get('/save', async (request, reply) => {
    reply.raw.setHeader('set-cookie', ['a=1', 'b=2'])
    request.session.set('user', 'ada')
    await request.session.save()
    return { ok: true }
  })
  const cookies = setCookies(await app.inject('/save'))
  t.same(cookies.filter((cookie) => !cookie.startsWith('session=')), ['a=1', 'b=2'])
  t.equal(cookies.filter((cookie) => cookie.startsWith('session=')).length, 1)
})

t.test('a hijacked reply that writes its own head passes cookieHeaders() along and loses no cookie', async (t) => {
  const app = await buildApp(t)
  app.get('/events', async (request, reply) => {
    reply.hijack()
    request.session.set('user', 'ada')
    await request.session.save()
    reply.raw.writeHead(200, { 'content-type': 'text/event-stream', 'set-cookie': ['theme=dark', ...request.session.cookieHeaders()] })
    reply.raw.end('data: hello\n\n')
  })
  app.get('/none', async (request) => ({ headers: request.session.cookieHeaders() }))
  const cookies = setCookies(await app.inject('/events'))
  t.equal(cookies[0], 'theme=dark')
  t.match(cookies[1], /^session=Fe26\.2\*/)
  t.equal(cookies.length, 2)
  t.same((await app.inject('/none')).json(), { headers: [] }, 'nothing to pass along before a save')
})
