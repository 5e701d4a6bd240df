import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import t from 'tap'
import { buildApp, cookieValue } from './helpers/app.js'
import { tempDir } from './helpers/temp-dir.js'

t.test('archive mode without an archive keeps sessions in .gen/sessions under the working directory', async (t) => {
  const cwd = process.cwd()
  const place = await tempDir(t)
  process.chdir(place)
  t.teardown(() => process.chdir(cwd))

  const app = await buildApp(t, { mode: 'archive' })
  app.post('/visit', async (request) => { request.session.set('visits', 1); return 'ok' })
  app.get('/health', { config: { session: false } }, async () => 'ok')
  await app.inject({ url: '/health' })
  t.notOk(existsSync(path.join(place, '.gen')), 'nothing is created before a session is stored')

  const id = cookieValue(await app.inject({ method: 'POST', url: '/visit' }), 'session-id')!.split('.')[0]!
  const stored = JSON.parse(await readFile(path.join(place, '.gen', 'sessions', id, 'session.json'), 'utf8'))
  t.same(stored.d, { visits: 1 }, 'the session is readable JSON in <dir>/<id>/session.json')
})
