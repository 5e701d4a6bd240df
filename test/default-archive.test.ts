import { existsSync } from 'node:fs'
import { readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import t from 'tap'
import { buildApp, cookieValue } from './helpers/app.js'
import { inPlace } from './helpers/temp-dir.js'

t.test('archive mode without an archive keeps sessions in .gen/sessions under the working directory, checked at startup', async (t) => {
  const place = await inPlace(t)
  const app = await buildApp(t, { mode: 'archive' })
  app.post('/visit', async (request) => { request.session.set('visits', 1); return 'ok' })
  await app.ready()
  t.ok(existsSync(path.join(place, '.gen', 'sessions')), 'the directory is made and checked when the app starts')

  const id = cookieValue(await app.inject({ method: 'POST', url: '/visit' }), 'session-id')!.split('.')[0]!
  const stored = JSON.parse(await readFile(path.join(place, '.gen', 'sessions', id, 'session.json'), 'utf8'))
  t.same(stored.d, { visits: 1 }, 'the session is readable JSON in <dir>/<id>/session.json')
})

t.test('an app whose routes all use cookies never makes the default archive', async (t) => {
  const place = await inPlace(t)
  const app = await buildApp(t)
  app.post('/visit', async (request) => { request.session.set('visits', 1); return 'ok' })
  await app.inject({ method: 'POST', url: '/visit' })
  t.notOk(existsSync(path.join(place, '.gen')))
})

for (const [label, options] of [
  ['archive mode', { mode: 'archive' as const }],
  ['a route in archive mode', {}],
  ['revocable cookie mode', { revocable: true }]
] as const) {
  t.test(`${label}: a default archive that cannot be made fails app.ready() with an FST_SESSION_ARCHIVE_* error`, async (t) => {
    const place = await inPlace(t)
    await writeFile(path.join(place, '.gen'), 'a file where the directory should be')
    const app = await buildApp(t, options)
    app.get('/cart', { config: { session: 'archive' } }, async () => 'ok')
    await t.rejects(async () => { await app.ready() }, { code: /^FST_SESSION_ARCHIVE_/ })
  })
}
