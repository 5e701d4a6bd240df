import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t from 'tap'
import { SECRET } from './helpers/app.js'

const root = fileURLToPath(new URL('..', import.meta.url))
const entry = fileURLToPath(new URL('../dist/index.js', import.meta.url))

const script = `
const sessions = require(${JSON.stringify(entry)})
const Fastify = require('fastify')
const app = Fastify()
app.register(sessions.fastifySessions, { secret: ${JSON.stringify(SECRET)} })
app.get('/', async (request) => {
  request.session.set('user', 'ada')
  return { mode: request.session.mode }
})
app.inject('/').then((response) => {
  console.log(JSON.stringify({
    defaultIsPlugin: typeof sessions.default === 'function' && sessions.default === sessions.fastifySessions,
    body: response.json(),
    cookie: response.headers['set-cookie']
  }))
  return app.close()
})
`

t.test('require() of the built package yields the plugin as .default and .fastifySessions, and it registers', async (t) => {
  t.ok(existsSync(entry), 'the package is built (npm install runs prepare)')
  const { stdout } = await promisify(execFile)(process.execPath, ['-e', script], { cwd: root })
  const result = JSON.parse(stdout.trim().split('\n').pop()!)
  t.equal(result.defaultIsPlugin, true)
  t.same(result.body, { mode: 'cookie' })
  t.match(result.cookie, /^session=Fe26\.2\*/)
})
