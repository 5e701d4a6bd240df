import t from 'tap'
import { ExpressStoreArchive, FST_SESSION_ARCHIVE_UNAVAILABLE, FST_SESSION_INVALID_OPTION, type ExpressStore } from '../../lib/index.js'
import { archiveConformance } from '../../lib/testing.js'

type Callback = (error?: unknown, result?: unknown) => void

/** A store in the express-session style: callbacks answered on a later tick, sessions JSON round-tripped as real stores do. */
class CallbackStore implements ExpressStore {
  readonly sessions = new Map<string, string>()
  readonly written: Array<{ sid: string, session: Record<string, unknown> }> = []

  get (sid: string, callback: Callback): void {
    const text = this.sessions.get(sid)
    setImmediate(callback, null, text === undefined ? null : JSON.parse(text))
  }

  set (sid: string, session: Record<string, unknown>, callback: Callback): void {
    this.written.push({ sid, session })
    this.sessions.set(sid, JSON.stringify(session))
    setImmediate(callback, null)
  }

  destroy (sid: string, callback: Callback): void {
    this.sessions.delete(sid)
    setImmediate(callback, null)
  }
}

/** A store whose methods take no callback and answer with promises only. */
class PromiseStore {
  readonly #sessions = new Map<string, string>()

  async get (sid: string): Promise<unknown> {
    const text = this.#sessions.get(sid)
    return text === undefined ? undefined : JSON.parse(text)
  }

  async set (sid: string, session: unknown): Promise<void> {
    this.#sessions.set(sid, JSON.stringify(session))
  }

  async destroy (sid: string): Promise<void> {
    this.#sessions.delete(sid)
  }
}

const ID = 'c2Vzc2lvbi1pZC1pbi1hbi1lcnJvcg'

t.test('a store answering with callbacks passes the conformance suite', async (t) => {
  for (const { name, run } of archiveConformance(() => new ExpressStoreArchive(new CallbackStore()))) t.test(name, (t) => t.resolves(run()))
})

t.test('a store answering with promises only passes the conformance suite', async (t) => {
  for (const { name, run } of archiveConformance(() => new ExpressStoreArchive(new PromiseStore()))) t.test(name, (t) => t.resolves(run()))
})

t.test('a store that takes a callback and also returns a promise is answered by its callback', async (t) => {
  const store = new CallbackStore()
  const both = {
    get: (sid: string, callback: Callback) => { store.get(sid, callback); return Promise.resolve('not the session') },
    set: (sid: string, session: Record<string, unknown>, callback: Callback) => { store.set(sid, session, callback); return Promise.resolve() },
    destroy: (sid: string, callback: Callback) => { store.destroy(sid, callback); return Promise.resolve() }
  }
  const archive = new ExpressStoreArchive(both)
  await archive.set(ID, 'session', 'from the callback')
  t.equal(await archive.get(ID, 'session'), 'from the callback')
})

t.test('a store that answers twice is heard the first time only', async (t) => {
  const store = new CallbackStore()
  const twice = {
    get: (sid: string, callback: Callback) => {
      store.get(sid, (error, session) => { callback(error, session); callback(null, { cookie: {}, fastifySessions: {} }) })
    },
    set: (sid: string, session: Record<string, unknown>, callback: Callback) => {
      store.set(sid, session, callback)
      return new Promise((_resolve, reject) => setImmediate(reject, new Error('late')))
    },
    destroy: store.destroy.bind(store)
  }
  const archive = new ExpressStoreArchive(twice)
  await archive.set(ID, 'session', 'first answer')
  t.equal(await archive.get(ID, 'session'), 'first answer')
})

t.test('each write gives the store the expiry of its latest key in the fields stores read', async (t) => {
  const store = new CallbackStore()
  const archive = new ExpressStoreArchive(store)
  const before = Date.now()
  await archive.set(ID, 'short', 'a', 60_000)
  await archive.set(ID, 'long', 'b', 120_000)
  const after = Date.now()
  const { cookie } = store.written[1]?.session as { cookie: { expires: Date, originalMaxAge: number, maxAge: number } }
  t.ok(cookie.expires instanceof Date, 'expires is a Date, as express-session gives it (connect-redis, connect-pg-simple)')
  t.ok(cookie.expires.getTime() >= before + 120_000 && cookie.expires.getTime() <= after + 120_000, 'expires is the latest key\'s expiry')
  t.ok(cookie.originalMaxAge > 119_000 && cookie.originalMaxAge <= 120_000, 'originalMaxAge is its ttl in ms (session-file-store)')
  t.equal(cookie.maxAge, cookie.originalMaxAge, 'maxAge too (memorystore)')
  t.match(JSON.parse(store.sessions.get(ID) as string), {
    cookie: { httpOnly: true, path: '/' },
    fastifySessions: { short: { value: 'a', expiresAt: Number }, long: { value: 'b', expiresAt: Number } }
  }, 'one session object holds every key with its own expiry')
})

t.test('a key without ttl leaves the store its own default lifetime', async (t) => {
  const store = new CallbackStore()
  const archive = new ExpressStoreArchive(store)
  await archive.set(ID, 'timed', 'a', 60_000)
  await archive.set(ID, 'kept', 'b')
  t.same(store.written[1]?.session['cookie'], { originalMaxAge: null, expires: null, httpOnly: true, path: '/' })
  t.same(JSON.parse(store.sessions.get(ID) as string).fastifySessions.kept, { value: 'b', expiresAt: null })
})

t.test('removing the last key destroys the session object; removing a missing key writes nothing', async (t) => {
  const store = new CallbackStore()
  const archive = new ExpressStoreArchive(store)
  await archive.set(ID, 'a', '1', 60_000)
  await archive.set(ID, 'b', '2', 60_000)
  await archive.remove(ID, 'missing')
  t.equal(store.written.length, 2, 'no write for a key that is not there')
  await archive.remove(ID, 'a')
  t.same(Object.keys(JSON.parse(store.sessions.get(ID) as string).fastifySessions), ['b'])
  await archive.remove(ID, 'b')
  t.equal(store.sessions.has(ID), false, 'the store holds nothing for the id')
})

t.test('the store\'s touch is never called: every renewal is a set carrying each key\'s expiry', async (t) => {
  const store = Object.assign(new CallbackStore(), { touched: 0, touch (_sid: string, _session: unknown, callback: Callback) { this.touched++; callback(null) } })
  const archive = new ExpressStoreArchive(store)
  await archive.set(ID, 'session', 'same', 60_000)
  await archive.set(ID, 'session', 'same', 120_000)
  t.equal(store.touched, 0)
  t.equal(store.written.length, 2)
})

t.test('a get failing with ENOENT is a missing session (session-file-store\'s answer for an unknown id)', async (t) => {
  const store = new CallbackStore()
  store.get = (sid, callback) => {
    callback(Object.assign(new Error(`ENOENT: no such file or directory, open '/sessions/${sid}.json'`), { code: 'ENOENT' }))
  }
  const archive = new ExpressStoreArchive(store)
  t.equal(await archive.get(ID, 'session'), undefined)
  t.equal(await archive.hasDomain(ID), false)
  await archive.set(ID, 'session', 'x')
  t.ok(store.sessions.has(ID), 'a set over a missing file writes it')
})

t.test('objects the archive did not write hold no keys', async (t) => {
  const store = new CallbackStore()
  const archive = new ExpressStoreArchive(store)
  const foreign = {
    'no field': { cookie: {} },
    'a field that is no object': { cookie: {}, fastifySessions: 'text' },
    'a null field': { cookie: {}, fastifySessions: null },
    'malformed entries': {
      cookie: {},
      fastifySessions: {
        number: { value: 1, expiresAt: null },
        'no expiry': { value: 'x' },
        'text expiry': { value: 'x', expiresAt: '2030-01-01' },
        null: null
      }
    }
  }
  for (const [name, session] of Object.entries(foreign)) {
    store.sessions.set(ID, JSON.stringify(session))
    t.equal(await archive.hasDomain(ID), false, name)
  }
  store.sessions.set(ID, '{"cookie":{},"fastifySessions":{"session":{"value":"x","expiresAt":1e400}}}')
  t.equal(await archive.hasDomain(ID), false, 'an infinite expiry, which no JSON the archive writes holds')
  store.sessions.set(ID, JSON.stringify({ cookie: {}, fastifySessions: { bad: { value: 2 }, good: { value: 'kept', expiresAt: null } } }))
  t.equal(await archive.get(ID, 'good'), 'kept', 'a well-formed entry beside malformed ones is read')
  t.equal(await archive.has(ID, 'bad'), false)
})

t.test('the field option names the property that holds the keys', async (t) => {
  const store = new CallbackStore()
  const archive = new ExpressStoreArchive(store, { field: 'fastify' })
  await archive.set(ID, 'session', 'x')
  t.match(JSON.parse(store.sessions.get(ID) as string), { fastify: { session: { value: 'x' } } })
  t.notOk('fastifySessions' in JSON.parse(store.sessions.get(ID) as string))
  t.equal(await new ExpressStoreArchive(store).get(ID, 'session'), undefined, 'another field sees none of them')
})

t.test('a store without get, set or destroy, or a bad field, is refused', async (t) => {
  const whole = new CallbackStore()
  const withoutSet = { get: whole.get, destroy: whole.destroy }
  for (const store of [undefined, null, {}, withoutSet]) {
    t.throws(() => new ExpressStoreArchive(store as unknown as ExpressStore), { code: 'FST_SESSION_INVALID_OPTION', message: /store/ })
  }
  for (const field of ['', 'cookie', '__proto__', 7]) {
    const error = t.throws(() => new ExpressStoreArchive(whole, { field: field as string }), { code: 'FST_SESSION_INVALID_OPTION' })
    t.ok(error instanceof FST_SESSION_INVALID_OPTION)
  }
})

t.test('a failing store rejects with FST_SESSION_ARCHIVE_UNAVAILABLE, carrying neither id nor data', async (t) => {
  const secretData = 'secret-session-data'
  const leaky = (sid: string): Error => Object.assign(new Error(`store failed for ${sid} holding ${secretData}`), { code: 'ECONNREFUSED', sid })
  const failures: Record<string, Partial<ExpressStore>> = {
    'a callback error': {
      get: (sid, callback) => { callback(leaky(sid)) },
      set: (sid, _session, callback) => { callback(leaky(sid)) },
      destroy: (sid, callback) => { callback(leaky(sid)) }
    },
    'a rejected promise': {
      get: async (sid: string) => { throw leaky(sid) },
      set: async (sid: string) => { throw leaky(sid) },
      destroy: async (sid: string) => { throw leaky(sid) }
    },
    'a thrown error': {
      get: (sid) => { throw leaky(sid) },
      set: (sid) => { throw leaky(sid) },
      destroy: (sid) => { throw leaky(sid) }
    },
    'a rejection or a throw without an error': {
      // eslint-disable-next-line prefer-promise-reject-errors
      get: async () => Promise.reject(undefined),
      set: () => { throw null }, // eslint-disable-line no-throw-literal
      // eslint-disable-next-line prefer-promise-reject-errors
      destroy: async () => Promise.reject(null)
    }
  }
  for (const [name, store] of Object.entries(failures)) {
    const archive = new ExpressStoreArchive(store as ExpressStore)
    const calls: Record<string, () => Promise<unknown>> = {
      get: () => archive.get(ID, 'session'),
      set: () => new ExpressStoreArchive({ ...new CallbackStore(), get: (_sid: string, callback: Callback) => { callback(null, null) }, set: store.set as ExpressStore['set'], destroy: store.destroy as ExpressStore['destroy'] }).set(ID, 'session', secretData),
      destroy: () => archive.removeDomain(ID)
    }
    for (const [method, call] of Object.entries(calls)) {
      const error = await call().then(() => undefined, (error: unknown) => error as Error & { code: string })
      t.ok(error instanceof FST_SESSION_ARCHIVE_UNAVAILABLE, `${name} in ${method}`)
      t.equal(error?.code, 'FST_SESSION_ARCHIVE_UNAVAILABLE')
      t.match(error?.message, new RegExp(`store's ${method} failed`))
      t.notMatch(error?.message, ID, 'no session id in the message')
      t.notMatch(error?.message, secretData, 'no session data in the message')
      t.equal(error?.cause, undefined, 'no cause to carry the store\'s own error')
    }
  }
})

t.test('the error names the store error\'s code when it is a plain code, never free text', async (t) => {
  const failWith = (code: unknown): ExpressStore => ({ ...new CallbackStore(), get: (_sid, callback) => { callback(Object.assign(new Error('x'), { code })) }, set () {}, destroy () {} })
  await t.rejects(new ExpressStoreArchive(failWith('ECONNREFUSED')).get(ID, 'session'), { message: /\(ECONNREFUSED\)/ })
  for (const code of [`${ID}.json`, 'lower case', 42]) {
    const error = await new ExpressStoreArchive(failWith(code)).get(ID, 'session').catch((error: Error) => error)
    t.notMatch((error as Error).message, /\(/, `no code shown for ${String(code)}`)
  }
})
