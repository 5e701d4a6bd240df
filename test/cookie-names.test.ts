import Fastify from 'fastify'
import t from 'tap'
import { fastifySessions } from '../lib/index.js'
import { addSessionRoutes, buildApp, SECRET } from './helpers/app.js'

// Names of Object.prototype members are valid cookie names: an absent cookie must not find the inherited member.
for (const cookieName of ['constructor', '__proto__', 'toString', 'valueOf', 'hasOwnProperty']) {
  t.test(`cookieName "${cookieName}": a request without cookies gets a fresh session`, async (t) => {
    const app = await buildApp(t, { cookieName })
    addSessionRoutes(app)
    const read = await app.inject('/read')
    t.equal(read.statusCode, 200)
    t.same(read.json(), { isNew: true, user: null })
  })
}

// Browsers match the __Host- and __Secure- prefixes without regard to case.
for (const cookieName of ['__host-sid', '__HOST-sid', '__secure-sid', '__SECURE-sid']) {
  t.test(`${cookieName} with secure 'auto' is refused at register`, async (t) => {
    const app = Fastify()
    t.teardown(() => app.close())
    app.register(fastifySessions, { secret: SECRET, cookieName })
    t.match(await app.ready().then(() => undefined, (error: unknown) => error), { code: 'FST_SESSION_INVALID_OPTION' })
  })
}
