import t from 'tap'
import { MemoryArchive } from '../lib/index.js'
import { buildApp, cookieValue } from './helpers/app.js'

t.test('archive mode: set() that would pass maxSize throws FST_SESSION_TOO_LARGE naming the key, and changes nothing', async (t) => {
  const archive = new MemoryArchive()
  const app = await buildApp(t, { mode: 'archive', archive, maxSize: 2048 })
  app.post('/fill', async (request) => {
    const { size } = request.query as { size: string }
    try {
      request.session.set('blob', 'x'.repeat(Number(size)))
      return { code: 'none' }
    } catch (error) {
      return { code: (error as { code: string }).code, message: (error as Error).message, kept: (request.session.get('blob') as string | undefined)?.length ?? null }
    }
  })
  app.post('/drop', async (request) => {
    request.session.delete('blob')
    request.session.set('other', 'y'.repeat(1500))
    return 'ok'
  })
  const first = await app.inject({ method: 'POST', url: '/fill?size=1500' })
  t.same(first.json(), { code: 'none' })
  const cookie = cookieValue(first, 'session-id')!
  const stored = await archive.get(cookie.split('.')[0]!, 'session')
  t.ok(stored!.length < 2048, 'the stored text is within maxSize')
  const over = await app.inject({ method: 'POST', url: '/fill?size=2100', cookies: { 'session-id': cookie } })
  t.equal(over.json().code, 'FST_SESSION_TOO_LARGE')
  t.match(over.json().message, /"blob"/)
  t.equal(over.json().kept, 1500, 'the value before stays')
  const dropped = await app.inject({ method: 'POST', url: '/drop', cookies: { 'session-id': cookie } })
  t.equal(dropped.statusCode, 200, 'deleting a key makes room again')
})

t.test('archive mode: regenerate() frees the room of the keys it drops', async (t) => {
  const app = await buildApp(t, { mode: 'archive', archive: new MemoryArchive(), maxSize: 2048 })
  app.post('/fill', async (request) => { request.session.set('blob', 'x'.repeat(1500)); return 'ok' })
  app.post('/login', async (request) => {
    await request.session.regenerate()
    request.session.set('other', 'y'.repeat(1500))
    return 'ok'
  })
  const filled = await app.inject({ method: 'POST', url: '/fill' })
  const login = await app.inject({ method: 'POST', url: '/login', cookies: { 'session-id': cookieValue(filled, 'session-id')! } })
  t.equal(login.statusCode, 200, 'the dropped key no longer counts')
})

t.test('cookie mode keeps its cookie size limit instead of maxSize', async (t) => {
  const app = await buildApp(t, { maxSize: 1024 })
  app.post('/fill', async (request) => { request.session.set('blob', 'x'.repeat(2000)); return 'ok' })
  t.equal((await app.inject({ method: 'POST', url: '/fill' })).statusCode, 200)
})

t.test('archive mode: maxSize counts UTF-8 bytes, also for a session read back', async (t) => {
  const archive = new MemoryArchive()
  const app = await buildApp(t, { mode: 'archive', archive, maxSize: 65536 })
  app.post('/add', async (request) => {
    const { key } = request.query as { key: string }
    try {
      request.session.set(key, '中'.repeat(10_000))
      return { code: 'none' }
    } catch (error) {
      return { code: (error as { code: string }).code }
    }
  })
  let cookie = cookieValue(await app.inject({ method: 'POST', url: '/add?key=a' }), 'session-id')!
  const codes: string[] = []
  for (const key of ['b', 'c']) {
    const response = await app.inject({ method: 'POST', url: `/add?key=${key}`, cookies: { 'session-id': cookie } })
    codes.push(response.json().code)
    cookie = cookieValue(response, 'session-id') ?? cookie
  }
  t.same(codes, ['none', 'FST_SESSION_TOO_LARGE'], 'three values of 30,000 bytes do not fit in 65,536')
  const stored = await archive.get(cookie.split('.')[0]!, 'session')
  t.ok(Buffer.byteLength(stored!) <= 65536, 'and the stored session is within maxSize')
})
