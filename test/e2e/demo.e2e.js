// The demo (examples/app.js) in a real browser: Debian's Chromium, driven by
// playwright-core, against the demo started as a child process in each mode.
// `npm run test:e2e` (after a build); screenshots go to .gen/e2e/.
import assert from 'node:assert/strict'
import { mkdir, readFile, rm } from 'node:fs/promises'
import path from 'node:path'
import { Redis } from 'ioredis'
import { Session } from '../../dist/index.js'
import {
  CHROMIUM, ROOT, atEnd, chromiumInstalled, cleanUp, launchBrowser, redisAnswers, runTests, startDemo, tempDir, test
} from './harness.js'

const SHOTS = path.join(ROOT, '.gen/e2e')
const DAY = 24 * 60 * 60
const REDIS_PREFIX = `fastify-sessions-e2e-${process.pid}-${Date.now()}:`
// The plugin offers a per-session lifetime once sessions have `options()`: the demo then shows "remember me".
const REMEMBER_ME = typeof Session.prototype.options === 'function'

if (!chromiumInstalled()) {
  const line = `e2e: no Chromium at ${CHROMIUM}; install it with: apt-get install -y chromium`
  if (process.env.CI === 'true') {
    console.log(`${line} (CI=true: failing rather than skipping)`)
    console.log('0 passed, 1 failed')
    process.exit(1)
  }
  console.log(`${line} (skipped)`)
  process.exit(0)
}

// E2E_MODES=cookie,file runs only those modes.
const only = process.env.E2E_MODES?.split(',')
const modes = ['cookie', 'file', 'memory'].filter((mode) => only === undefined || only.includes(mode))
if (only !== undefined && !only.includes('redis')) {
  // left out on request
} else if (await redisAnswers()) {
  modes.push('redis')
} else if (process.env.CI === 'true') {
  test('redis: a Redis answers on 127.0.0.1:6379', () => assert.fail('no Redis on 127.0.0.1:6379 under CI=true'))
} else {
  console.log('e2e: no Redis on 127.0.0.1:6379, the redis mode is left out (start one with: redis-server --daemonize yes)')
}

if (!REMEMBER_ME) console.log('e2e: sessions have no options() yet, so the demo offers no "remember me" and its test waits for it')

await rm(SHOTS, { recursive: true, force: true })
await mkdir(SHOTS, { recursive: true })

let redis
if (modes.includes('redis')) {
  redis = new Redis('redis://127.0.0.1:6379', { lazyConnect: true, enableOfflineQueue: true })
  atEnd(async () => {
    const keys = await redis.keys(`${REDIS_PREFIX}*`)
    if (keys.length > 0) await redis.del(...keys)
    await redis.quit()
  })
}

function flipChar (text, at) {
  const c = text[at]
  return text.slice(0, at) + (c === 'A' ? 'B' : 'A') + text.slice(at + 1)
}

for (const mode of modes) {
  const cookieName = mode === 'cookie' ? 'session' : 'session-id'
  // Set by the first test of the mode; the others need it.
  let demo, context, page, sessionDir, env

  const where = () => ({
    cookie: 'sealed in the cookie itself',
    file: `FileArchive in ${sessionDir}`,
    memory: 'MemoryArchive',
    redis: `RedisArchive at redis://127.0.0.1:6379, keys ${REDIS_PREFIX}{id}`
  })[mode]

  const shot = (name) => page.screenshot({ path: path.join(SHOTS, `${mode}-${name}.png`), fullPage: true })

  async function fresh () {
    assert.ok(page, 'the demo and the browser started')
    await context.clearCookies()
    return page.goto(`${demo.url}/`)
  }

  async function sessionCookies () {
    return (await context.cookies()).filter((cookie) => cookie.name === cookieName)
  }

  async function onlyCookie () {
    const cookies = await context.cookies()
    assert.deepEqual(cookies.map((cookie) => cookie.name), [cookieName], 'the browser holds the session cookie and no other')
    return cookies[0]
  }

  async function submit (action) {
    const [response] = await Promise.all([page.waitForNavigation(), action()])
    return response
  }

  async function logIn (name) {
    await page.fill('input[name=name]', name)
    return submit(() => page.click('#login button'))
  }

  async function shown () {
    return {
      visits: Number(await page.textContent('[data-testid=visits]')),
      user: await page.locator('[data-testid=user]').count() === 0 ? undefined : await page.textContent('[data-testid=user]'),
      flashes: await page.locator('.flash').allTextContents(),
      contents: JSON.parse(await page.textContent('[data-testid=contents]')),
      loginForm: await page.locator('#login').count() === 1
    }
  }

  // What the archive holds for the session whose id cookie the browser has.
  async function stored (id) {
    if (mode === 'file') {
      try {
        return await readFile(path.join(sessionDir, id, 'session.json'), 'utf8')
      } catch (error) {
        if (error.code === 'ENOENT') return undefined
        throw error
      }
    }
    if (mode === 'redis') return (await redis.hget(`${REDIS_PREFIX}{${id}}`, 'session')) ?? undefined
    return 'unknown'
  }
  const inspectable = mode === 'file' || mode === 'redis'
  // The id inside a signed id cookie: everything before the signature.
  const idOf = (value) => decodeURIComponent(value).split('.')[0]

  test(`${mode}: starts on a free port, prints the URL and says it made a random secret`, async () => {
    env = { SESSION_MODE: mode }
    if (mode === 'file') {
      sessionDir = await tempDir('fastify-sessions-e2e-sessions-')
      env.SESSION_DIR = sessionDir
    }
    if (mode === 'redis') env.REDIS_PREFIX = REDIS_PREFIX
    demo = await startDemo(env)
    context = await launchBrowser()
    page = context.pages()[0] ?? await context.newPage()
    const lines = demo.output().split('\n')
    assert.equal(lines.filter((line) => line.includes('SESSION_SECRET is not set')).length, 1, 'one log line about the secret')
    assert.ok(lines.some((line) => line === `fastify-sessions demo, ${mode} mode: open ${demo.url}/`), 'the URL to open')
  })

  test(`${mode}: the page is uncached, names its mode and archive, and sets the plugin's cookie`, async () => {
    const response = await fresh()
    assert.equal(response.status(), 200)
    assert.equal(await response.headerValue('cache-control'), 'no-store')
    assert.match(await response.headerValue('content-type'), /^text\/html/)
    assert.equal(await page.textContent('h1'), 'fastify-sessions demo')
    assert.equal(await page.textContent('[data-testid=mode]'), mode)
    assert.ok((await page.textContent('[data-testid=where]')).includes(where()), `the page says where sessions live: ${where()}`)
    assert.match(await page.textContent('footer'), /random secret/)
    const setCookie = await response.headerValue('set-cookie')
    assert.match(setCookie, new RegExp(`^${cookieName}=[^;]+; Max-Age=${DAY}; Path=/; HttpOnly; SameSite=Lax$`))
    const cookie = await onlyCookie()
    assert.equal(cookie.httpOnly, true)
    assert.equal(cookie.sameSite, 'Lax')
    assert.equal(cookie.path, '/')
    assert.equal(cookie.secure, false, 'not Secure over plain http')
    assert.equal(cookie.domain, '127.0.0.1')
    const expiresIn = cookie.expires - Date.now() / 1000
    assert.ok(Math.abs(expiresIn - DAY) < 120, `expires in a day (${Math.round(expiresIn)} s)`)
    if (mode === 'cookie') assert.match(cookie.value, /^Fe26\.2\*/)
    else assert.equal(await page.locator('[data-testid=session-id]').count(), 1)
    await shot('first-visit')
  })

  test(`${mode}: the visit counter counts every visit, and the session view shows it`, async () => {
    await fresh()
    assert.equal((await shown()).visits, 1)
    await page.reload()
    assert.equal((await shown()).visits, 2)
    await page.goto(`${demo.url}/`)
    const now = await shown()
    assert.equal(now.visits, 3)
    assert.deepEqual(now.contents, { visits: 3 })
  })

  test(`${mode}: the cookie size is the Set-Cookie the page carried, against the 4096-byte limit`, async () => {
    const response = await fresh()
    const setCookie = await response.headerValue('set-cookie')
    const figure = Number(await page.textContent('[data-testid=cookie-bytes]'))
    assert.equal(figure, Buffer.byteLength(setCookie))
    const cookie = await onlyCookie()
    assert.ok(figure > cookie.name.length + 1 + cookie.value.length, 'the figure counts the attributes too')
    assert.match(await page.textContent('dd'), /of 4096 bytes/)
    if (mode === 'cookie') assert.ok(figure > 200, 'a sealed session is a few hundred bytes')
    else assert.ok(figure < 200, 'an id cookie stays small')
  })

  test(`${mode}: login shows the name and a flash message once, on a new session`, async () => {
    await fresh()
    await page.reload()
    const before = (await onlyCookie()).value
    assert.equal(await page.locator('input[name=remember]').count(), REMEMBER_ME ? 1 : 0, 'remember me only when sessions have options()')
    const response = await logIn('Ada')
    assert.equal(response.url(), `${demo.url}/`, 'the POST was answered with a redirect to the page')
    const after = await shown()
    assert.equal(after.user, 'Ada')
    assert.deepEqual(after.flashes, ['Welcome, Ada!'])
    assert.equal(after.visits, 3, 'the visits are carried over the login')
    assert.equal(after.contents.user.name, 'Ada')
    assert.match(after.contents.user.since, /^\d{4}-\d\d-\d\dT/)
    assert.equal(after.loginForm, false)
    assert.match(await page.textContent('#you ~ p'), /^Signed in as Ada since \d\d:\d\d UTC\.$/)
    const cookie = await onlyCookie()
    assert.notEqual(cookie.value, before, 'login issues a new session')
    if (mode !== 'cookie') assert.notEqual(idOf(cookie.value), idOf(before), 'login issues a new id')
    if (inspectable) {
      assert.match(await stored(idOf(cookie.value)), /"Ada"/)
      assert.equal(await stored(idOf(before)), undefined, 'the session from before login is gone')
    }
    await shot('signed-in')
    await page.reload()
    const again = await shown()
    assert.equal(again.user, 'Ada')
    assert.deepEqual(again.flashes, [], 'the flash message is shown once')
    assert.equal(again.visits, 4)
  })

  test(`${mode}: a login submitted twice signs in once, with one flash message`, async () => {
    await fresh()
    await page.fill('input[name=name]', 'Grace')
    await submit(() => page.evaluate(() => {
      const form = document.querySelector('#login')
      form.requestSubmit()
      form.requestSubmit()
    }))
    await page.waitForLoadState()
    const now = await shown()
    assert.equal(now.user, 'Grace')
    assert.deepEqual(now.flashes, ['Welcome, Grace!'])
    assert.equal((await sessionCookies()).length, 1)
  })

  test(`${mode}: a name with markup is shown as text`, async () => {
    await fresh()
    let dialogs = 0
    const onDialog = (dialog) => {
      dialogs++
      return dialog.dismiss()
    }
    page.on('dialog', onDialog)
    const name = '<img src=x onerror=alert(1)><b>Eve</b>'
    await logIn(name)
    assert.equal((await shown()).user, name)
    assert.deepEqual((await shown()).flashes, [`Welcome, ${name}!`])
    assert.equal(await page.locator('main img, main b').count(), 0, 'no element made from the name')
    page.off('dialog', onDialog)
    assert.equal(dialogs, 0)
  })

  test(`${mode}: logout ends the session and leaves no cookie`, async () => {
    await fresh()
    await logIn('Ada')
    const id = idOf((await onlyCookie()).value)
    const response = await submit(() => page.click('text=Log out'))
    assert.equal(response.url(), `${demo.url}/signed-out`)
    assert.equal(await page.textContent('h2'), 'You are signed out')
    assert.deepEqual(await context.cookies(), [], 'no cookie after logout')
    if (inspectable) assert.equal(await stored(id), undefined, 'the stored session is removed')
    await shot('signed-out')
    await page.click('text=Back to the demo')
    const next = await shown()
    assert.equal(next.user, undefined)
    assert.equal(next.visits, 1)
    assert.equal(next.loginForm, true)
  })

  test(`${mode}: Back after logout does not show the signed-in page`, async () => {
    await fresh()
    await logIn('Ada')
    assert.equal((await shown()).user, 'Ada')
    await submit(() => page.click('text=Log out'))
    assert.equal(new URL(page.url()).pathname, '/signed-out')
    const response = await page.goBack()
    assert.ok(response !== null, 'Back asked the server again')
    assert.equal(new URL(page.url()).pathname, '/')
    const back = await shown()
    assert.equal(back.user, undefined, 'not signed in')
    assert.equal(back.loginForm, true)
    assert.equal(await page.locator('text=Signed in as').count(), 0)
  })

  test(`${mode}: a logout posted from another site is refused and signs nobody out`, async () => {
    await fresh()
    await logIn('Ada')
    // localhost is another site than 127.0.0.1: its page posts the demo's logout form.
    const other = demo.url.replace('127.0.0.1', 'localhost')
    await page.goto(`${other}/signed-out`)
    const response = await submit(() => page.evaluate((action) => {
      const form = document.createElement('form')
      form.method = 'post'
      form.action = action
      document.body.append(form)
      form.submit()
    }, `${demo.url}/logout`))
    assert.equal(response.status(), 403)
    assert.equal(await page.textContent('[data-testid=message]'), 'This form was posted from another site: refused.')
    await page.goto(`${demo.url}/`)
    assert.equal((await shown()).user, 'Ada', 'still signed in')
  })

  if (REMEMBER_ME) {
    test(`${mode}: remember me keeps the session for 30 days`, async () => {
      await fresh()
      await page.fill('input[name=name]', 'Ada')
      await page.check('input[name=remember]')
      await submit(() => page.click('#login button'))
      assert.equal((await shown()).user, 'Ada')
      const expiresIn = (await onlyCookie()).expires - Date.now() / 1000
      assert.ok(Math.abs(expiresIn - 30 * DAY) < 120, `expires in 30 days (${Math.round(expiresIn)} s)`)
    })
  }

  if (mode !== 'cookie') {
    test(`${mode}: the devices card lists every session of the user, and "sign out other devices" ends the others`, async () => {
      // A second device: a plain HTTP client that logs in as the same user.
      const login = await fetch(`${demo.url}/login`, { method: 'POST', body: new URLSearchParams({ name: 'Hedy' }), redirect: 'manual' })
      const phone = login.headers.getSetCookie().map((cookie) => cookie.split(';')[0]).join('; ')
      const phonePage = async () => (await fetch(`${demo.url}/`, { headers: { cookie: phone } })).text()
      assert.match(await phonePage(), /data-testid="user"[^>]*>Hedy</, 'the phone is signed in')
      await fresh()
      await logIn('Hedy')
      const devices = page.locator('[data-testid=devices] li')
      assert.equal(await devices.count(), 2, 'both devices are listed')
      assert.equal(await page.locator('[data-testid=devices] li strong').count(), 1, 'one of them is this device')
      await shot('devices')
      await submit(() => page.click('form[action="/devices/sign-out-others"] button'))
      assert.equal(await devices.count(), 1, 'only this device is left')
      assert.equal((await shown()).user, 'Hedy', 'and it is still signed in')
      assert.doesNotMatch(await phonePage(), /data-testid="user"/, 'the phone is signed out')
    })
  }

  test(`${mode}: a tampered cookie is a fresh session`, async () => {
    await fresh()
    await logIn('Ada')
    const cookie = await onlyCookie()
    // A character in the middle: the sealed data (cookie mode) or the id (archive mode).
    const tampered = flipChar(cookie.value, mode === 'cookie' ? 120 : 5)
    await context.addCookies([{ ...cookie, value: tampered }])
    const response = await page.reload()
    assert.equal(response.status(), 200)
    const now = await shown()
    assert.equal(now.user, undefined)
    assert.equal(now.visits, 1)
    assert.deepEqual(now.contents, { visits: 1 })
    const replaced = await onlyCookie()
    assert.notEqual(replaced.value, tampered, 'the tampered cookie is replaced')
    assert.notEqual(replaced.value, cookie.value)
  })

  test(`${mode}: an unknown path is an HTML 404 page`, async () => {
    await context.clearCookies()
    const response = await page.goto(`${demo.url}/no/such/<page>`)
    assert.equal(response.status(), 404)
    assert.match(await response.headerValue('content-type'), /^text\/html/)
    assert.equal(await page.textContent('h2'), 'Page not found')
    assert.equal(await page.textContent('[data-testid=path]'), '/no/such/%3Cpage%3E')
    assert.deepEqual(await context.cookies(), [], 'a 404 sets no cookie')
    await shot('not-found')
    await page.click('text=Back to the demo')
    assert.equal((await shown()).visits, 1)
  })

  test(`${mode}: the page fits a phone's width`, async () => {
    await page.setViewportSize({ width: 360, height: 740 })
    try {
      await fresh()
      await logIn('Ada')
      const width = await page.evaluate(() => document.documentElement.scrollWidth)
      assert.ok(width <= 360, `no sideways scrolling (${width} px)`)
      await shot('phone')
    } finally {
      await page.setViewportSize({ width: 960, height: 640 })
    }
  })

  test(`${mode}: a request the server refuses gets an HTML error page`, async () => {
    await fresh()
    const answer = await page.evaluate(async () => {
      const response = await fetch('/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{' })
      return { status: response.status, type: response.headers.get('content-type'), body: await response.text() }
    })
    assert.equal(answer.status, 400)
    assert.match(answer.type, /^text\/html/)
    assert.match(answer.body, /Error 400: <code>FST_ERR_CTP_INVALID_JSON_BODY<\/code>/)
  })

  const survives = mode !== 'memory'
  test(`${mode}: with SESSION_SECRET set, a restart ${survives ? 'keeps the session' : 'ends every session'}`, async () => {
    await demo.stop()
    demo = await startDemo({ ...env, SESSION_SECRET: 'a-demo-secret-of-at-least-32-characters' })
    assert.doesNotMatch(demo.output(), /SESSION_SECRET is not set/)
    await fresh()
    await logIn('Ada')
    await demo.stop()
    demo = await startDemo({ ...env, SESSION_SECRET: 'a-demo-secret-of-at-least-32-characters' })
    await page.goto(`${demo.url}/`)
    const now = await shown()
    assert.equal(now.user, survives ? 'Ada' : undefined)
    assert.equal(now.visits, survives ? 3 : 1)
    assert.match(await page.textContent('footer'), /Signed with SESSION_SECRET\./)
  })

  test(`${mode}: the demo stops cleanly`, async () => {
    assert.ok(demo, 'the demo started')
    await context.close()
    assert.deepEqual(await demo.stop(), { code: 0, signal: null }, 'SIGTERM closes the app and exits 0')
    assert.doesNotMatch(demo.output(), /"level":50/, 'no error was logged')
  })
}

test('a SESSION_MODE the demo does not know stops it with a clear message', async () => {
  await assert.rejects(startDemo({ SESSION_MODE: 'sqlite' }),
    /exited with 1 before it started:\nSESSION_MODE must be one of cookie, file, memory, redis, not "sqlite"/)
})

test('a Redis that does not answer stops the redis mode with the error code', async () => {
  await assert.rejects(startDemo({ SESSION_MODE: 'redis', REDIS_URL: 'redis://127.0.0.1:1' }),
    /The demo cannot start in redis mode: FST_SESSION_ARCHIVE_UNAVAILABLE/)
})

let result
try {
  result = await runTests()
} finally {
  await cleanUp()
}
console.log(`${result.passed} passed, ${result.failed} failed`)
process.exitCode = result.failed === 0 ? 0 : 1
