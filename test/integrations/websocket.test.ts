import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import fastifyWebsocket from '@fastify/websocket'
import type { FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import WebSocket from 'ws'
import { buildApp, cookieValue } from '../helpers/app.js'
import { ARCHIVE_MODE, COOKIE_MODE, type Setup } from '../helpers/setups.js'

const COOKIE = COOKIE_MODE
const ARCHIVE = ARCHIVE_MODE

/**
 * A login over HTTP and a websocket route that answers each message: `who`
 * with the session's user, `save` by storing a change with `save()` and
 * answering `saved` or the error's code.
 */
async function websocketApp (t: Test, setup: Setup): Promise<{ app: FastifyInstance, url: string }> {
  const app = await buildApp(t, setup.options())
  await app.register(fastifyWebsocket)
  app.post('/login', async (request) => { request.session.set('user', 'ada'); return 'ok' })
  app.get('/read', async (request) => ({ user: request.session.get('user') ?? null, seen: request.session.get('seen') ?? null }))
  app.get('/live', { websocket: true }, (socket, request) => {
    socket.on('message', (message: Buffer) => {
      if (message.toString() === 'who') {
        socket.send(JSON.stringify({ user: request.session.get('user') ?? null, upgraded: request.ws }))
        return
      }
      request.session.set('seen', 'over the websocket')
      request.session.save().then(() => socket.send('saved'), (error: { code: string }) => socket.send(error.code))
    })
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as AddressInfo
  return { app, url: `127.0.0.1:${port}` }
}

/** Opens a websocket with the given session cookie, closed when the test ends. */
async function connect (t: Test, url: string, cookie: string | undefined): Promise<WebSocket> {
  const socket = new WebSocket(`ws://${url}/live`, cookie === undefined ? {} : { headers: { cookie } })
  t.teardown(() => socket.close())
  await once(socket, 'open')
  return socket
}

async function ask (socket: WebSocket, message: string): Promise<string> {
  socket.send(message)
  const [answer] = await once(socket, 'message') as [Buffer]
  return answer.toString()
}

async function login (app: FastifyInstance, setup: Setup): Promise<string> {
  const response = await app.inject({ method: 'POST', url: '/login' })
  return `${setup.name}=${cookieValue(response, setup.name) as string}`
}

for (const setup of [COOKIE, ARCHIVE]) {
  t.test(`${setup.label}: the websocket handler reads the session of the user logged in over HTTP`, async (t) => {
    const { app, url } = await websocketApp(t, setup)
    const cookie = await login(app, setup)
    t.same(JSON.parse(await ask(await connect(t, url, cookie), 'who')), { user: 'ada', upgraded: true })
    t.same(JSON.parse(await ask(await connect(t, url, undefined), 'who')), { user: null, upgraded: true }, 'and no session without the cookie')
  })
}

t.test('archive mode: set() then save() in the websocket handler stores the change, seen by a later HTTP request', async (t) => {
  const { app, url } = await websocketApp(t, ARCHIVE)
  const cookie = await login(app, ARCHIVE)
  t.equal(await ask(await connect(t, url, cookie), 'save'), 'saved')
  const read = await app.inject({ url: '/read', headers: { cookie } })
  t.same(read.json(), { user: 'ada', seen: 'over the websocket' })
})

t.test('archive mode: a visitor without a session cannot start one over the websocket: save() rejects with FST_SESSION_HEADERS_SENT', async (t) => {
  const { url } = await websocketApp(t, ARCHIVE)
  t.equal(await ask(await connect(t, url, undefined), 'save'), 'FST_SESSION_HEADERS_SENT', 'its new id could reach no browser')
})

t.test('cookie mode: save() in the websocket handler rejects with FST_SESSION_HEADERS_SENT, as the handshake left without the cookie', async (t) => {
  const { app, url } = await websocketApp(t, COOKIE)
  const cookie = await login(app, COOKIE)
  t.equal(await ask(await connect(t, url, cookie), 'save'), 'FST_SESSION_HEADERS_SENT')
  t.same((await app.inject({ url: '/read', headers: { cookie } })).json(), { user: 'ada', seen: null }, 'the cookie the browser holds is unchanged')
})
