import * as fsp from 'node:fs/promises'
import path from 'node:path'
import t from 'tap'
import { FileArchive, type FileArchiveFs } from '../../lib/archives/file.js'
import { buildApp, LogCapture } from '../helpers/app.js'
import { tempDir } from '../helpers/temp-dir.js'

t.test('a real fs error during a save logs neither the session id nor sends the path', async (t) => {
  const logs = new LogCapture()
  const dir = path.join(await tempDir(t), 'sessions')
  let failing = false
  const fs = {
    ...fsp,
    rename: (async (from: string, to: string) => fsp.rename(from, failing ? path.join(dir, 'missing', 'x') : to)) as FileArchiveFs['rename']
  } as FileArchiveFs
  const app = await buildApp(t, { mode: 'archive', archive: new FileArchive({ dir, sweepIntervalMs: 0, fs }) }, { logger: { level: 'trace', stream: logs.stream } })
  app.post('/visit', async (request) => {
    request.session.set('visits', (request.session.get('visits') as number | undefined ?? 0) + 1)
    return { ok: true }
  })
  const cookie = (await app.inject({ method: 'POST', url: '/visit' })).cookies[0]!.value
  const id = cookie.split('.')[0]!
  failing = true
  const failed = await app.inject({ method: 'POST', url: '/visit', cookies: { 'session-id': cookie } })
  t.equal(failed.statusCode, 503)
  t.equal(failed.json().code, 'FST_SESSION_ARCHIVE_IO')
  t.notMatch(failed.body, dir, 'the reply does not disclose the archive path')
  t.notOk(logs.lines.some((line) => JSON.stringify(line).includes(id)), 'no log line holds the session id')
})
