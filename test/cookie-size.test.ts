import t, { type Test } from 'tap'
import type { FastifySessionsOptions } from '../lib/index.js'
import { buildApp, LogCapture, setCookies } from './helpers/app.js'

const VALUE = 'x'.repeat(600)

/** An app whose `/auto` route stores VALUE and lets the automatic save send it, and whose `/explicit` route saves in the handler. */
async function sizeApp (t: Test, cookieSize: NonNullable<FastifySessionsOptions['cookieSize']>): Promise<{ app: Awaited<ReturnType<typeof buildApp>>, logs: LogCapture }> {
  const logs = new LogCapture()
  const app = await buildApp(t, { cookieSize }, logs.server)
  app.get('/auto', async (request) => {
    request.session.set('big', VALUE)
    return { ok: true }
  })
  app.get('/explicit', async (request) => {
    request.session.set('big', VALUE)
    try {
      await request.session.save()
      return { saved: true }
    } catch (err) {
      request.session.delete('big')
      request.session.set('small', 'kept')
      return { saved: false, code: (err as { code: string }).code }
    }
  })
  return { app, logs }
}

/** The exact size of the cookie that VALUE makes, measured with the default limits. */
async function measure (t: Test): Promise<number> {
  const { app } = await sizeApp(t, {})
  const cookies = setCookies(await app.inject('/auto'))
  t.equal(cookies.length, 1)
  return cookies[0]!.length
}

t.test('a cookie at the warning threshold is sent and logs FST_SESSION_COOKIE_NEAR_LIMIT with its exact size', async (t) => {
  const bytes = await measure(t)
  for (const url of ['/auto', '/explicit']) {
    const { app, logs } = await sizeApp(t, { warn: bytes, max: bytes })
    const response = await app.inject(url)
    t.equal(response.statusCode, 200, url)
    const sent = setCookies(response)
    t.equal(sent.length, 1)
    const warnings = logs.withCode('FST_SESSION_COOKIE_NEAR_LIMIT')
    t.equal(warnings.length, 1, `${url} warns once`)
    t.equal(warnings[0]!['level'], 40, 'at warn level')
    t.equal(warnings[0]!['bytes'], Buffer.byteLength(sent[0]!), 'the measured size is the size of the header sent')
    t.equal(warnings[0]!['limit'], bytes)
  }
})

t.test('a cookie one byte under the warning threshold logs nothing', async (t) => {
  const bytes = await measure(t)
  const { app, logs } = await sizeApp(t, { warn: bytes + 1, max: bytes + 1 })
  const response = await app.inject('/auto')
  t.equal(setCookies(response)[0]!.length, bytes)
  t.same(logs.withCode('FST_SESSION_COOKIE_NEAR_LIMIT'), [])
})

t.test('a cookie above the limit fails the automatic save with FST_SESSION_COOKIE_TOO_LARGE and sends no cookie', async (t) => {
  const bytes = await measure(t)
  const { app, logs } = await sizeApp(t, { warn: bytes - 1, max: bytes - 1 })
  const response = await app.inject('/auto')
  t.equal(response.statusCode, 500)
  t.equal(response.json().code, 'FST_SESSION_COOKIE_TOO_LARGE')
  t.same(setCookies(response), [])
  t.match(logs.lines.filter((line) => line['level'] === 50), [{ err: { code: 'FST_SESSION_COOKIE_TOO_LARGE' } }], 'and logs an error')
  t.same(logs.withCode('FST_SESSION_COOKIE_NEAR_LIMIT'), [], 'a cookie that is not sent is not warned about')
})

t.test('an explicit save above the limit throws FST_SESSION_COOKIE_TOO_LARGE where the handler can catch it', async (t) => {
  const bytes = await measure(t)
  const { app } = await sizeApp(t, { max: bytes - 1 })
  const response = await app.inject('/explicit')
  t.equal(response.statusCode, 200)
  t.same(response.json(), { saved: false, code: 'FST_SESSION_COOKIE_TOO_LARGE' })
  const cookies = setCookies(response)
  t.equal(cookies.length, 1, 'the smaller session the handler kept is sent')
  t.ok(cookies[0]!.length < bytes)
})

t.test('the default limits: a warning from 3584 bytes, a refusal above 4096', async (t) => {
  const logs = new LogCapture()
  const app = await buildApp(t, {}, logs.server)
  app.get('/size/:n', async (request) => {
    request.session.set('big', 'x'.repeat(Number((request.params as { n: string }).n)))
    return { ok: true }
  })
  const base = setCookies(await app.inject('/size/0'))[0]!.length
  // Each 48 bytes of JSON (three AES blocks) add 64 characters of base64url.
  let n = 0
  let size = base
  const sizes: number[] = []
  while (size <= 4096) {
    n += 16
    const response = await app.inject(`/size/${n}`)
    if (response.statusCode !== 200) {
      t.equal(response.json().code, 'FST_SESSION_COOKIE_TOO_LARGE')
      t.same(setCookies(response), [])
      break
    }
    size = setCookies(response)[0]!.length
    sizes.push(size)
  }
  const largest = Math.max(...sizes)
  t.ok(largest <= 4096, 'nothing above 4096 bytes is sent')
  t.ok(largest > 4096 - 64, 'cookies up to the limit are sent')
  const warned = logs.withCode('FST_SESSION_COOKIE_NEAR_LIMIT').map((line) => line['bytes'] as number)
  t.same(warned, sizes.filter((s) => s >= 3584), 'exactly the cookies of 3584 bytes or more warn')
  t.ok(warned.length > 0)
  t.ok(warned.every((bytes) => logs.withCode('FST_SESSION_COOKIE_NEAR_LIMIT').some((line) => line['limit'] === 4096 && line['bytes'] === bytes)))
})
