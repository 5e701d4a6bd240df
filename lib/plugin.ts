import type { FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction, RouteOptions } from 'fastify'
import fp from 'fastify-plugin'
import { archiveFailure } from './archive-failure.js'
import { ArchiveMode } from './archive-mode.js'
import type { Archive } from './archives/archive.js'
import { FileArchive } from './archives/file.js'
import { Codec } from './codec.js'
import { CookieMode } from './cookie-mode.js'
import { FST_SESSION_INVALID_OPTION, FST_SESSION_NOT_ENABLED } from './errors.js'
import { resolveOptions, type FastifySessionsOptions, type SessionMode } from './options.js'
import { kEngine, kState, type Session } from './session.js'
import { SessionsApi } from './sessions-api.js'
import { UserSessions } from './user-sessions.js'

declare module 'fastify' {
  interface FastifyRequest {
    /**
     * The request's session. On a route with `config: { session: false }`,
     * and before the plugin's `onRequest` hook has run, reading it throws
     * `FST_SESSION_NOT_ENABLED`.
     */
    session: Session
  }
  interface FastifyInstance {
    /** The sessions of each user, revocation, and sessions read outside a route. */
    sessions: SessionsApi
  }
  interface FastifyContextConfig {
    /** This route's session: `'cookie'`, `'archive'`, or `false` for none. @default the plugin's `mode` */
    session?: SessionMode | false
  }
}

const ROUTE_MODES: ReadonlyArray<unknown> = [undefined, false, 'cookie', 'archive']
const kSession = Symbol('fastify-sessions.session')
const CACHE_CONTROL = 'private, no-cache="set-cookie"'

type WithSession = FastifyRequest & { [kSession]: Session | null }

async function plugin (fastify: FastifyInstance, rawOptions: FastifySessionsOptions): Promise<void> {
  const options = resolveOptions(rawOptions)
  let defaultArchive: Archive | undefined
  const archive = (): Archive => options.archive ?? (defaultArchive ??= new FileArchive())
  const codec = new Codec(options.types)
  // The archive is made on first use: an app whose routes all use cookies
  // never creates the default file archive's directory.
  let archiveMode: ArchiveMode | undefined
  const archiveEngine = (): ArchiveMode => (archiveMode ??= new ArchiveMode(options, codec, archive(), users, cookieMode))
  const users: UserSessions = new UserSessions(archive, options.secrets,
    (entry) => entry.m === 'a' ? archiveEngine().lastSaved(entry.i) : cookieMode.recordSeen(entry.i),
    (entry) => entry.m === 'a' ? archiveEngine().revokeId(entry.i) : cookieMode.revokeRecord(entry.i))
  const cookieMode = new CookieMode(options, codec, users, archive, archiveEngine)

  let archiveRoutes = options.mode === 'archive' || options.revocable || options.cookieSize.overflow === 'archive'
  if (archiveRoutes && options.archive !== undefined) await readyArchive(options.archive)

  fastify.decorate('sessions', new SessionsApi(options, users, cookieMode, archiveEngine, fastify.log))
  fastify.decorateRequest(kSession, null)
  fastify.decorateRequest('session', {
    getter (this: FastifyRequest): Session {
      const session = (this as WithSession)[kSession]
      if (session === null) {
        throw new FST_SESSION_NOT_ENABLED(this.routeOptions.config.session === false
          ? `on ${this.method} ${this.routeOptions.url as string}: its route has config: { session: false }`
          : 'before the fastify-sessions onRequest hook has run: read it in a later hook or in the handler')
      }
      return session
    }
  })

  fastify.addHook('onRoute', function checkRouteConfig (route: RouteOptions) {
    const mode = route.config?.session
    if (!ROUTE_MODES.includes(mode)) {
      throw new FST_SESSION_INVALID_OPTION(`config.session of ${route.method.toString()} ${route.url}`, "must be false, 'cookie' or 'archive'")
    }
    if (mode === 'archive') archiveRoutes = true
  })

  // The default file archive is checked once the routes are known, so a
  // directory that cannot be written fails `app.ready()`, not every request.
  fastify.addHook('onReady', async function sessionOnReady () {
    if (archiveRoutes && options.archive === undefined) await readyArchive(archive())
  })

  // The two hooks run on every request, so they take callbacks: a cookie-mode
  // session, and any session left unused, then costs no promise at all.
  fastify.addHook('onRequest', function sessionOnRequest (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) {
    const mode = request.routeOptions.config.session ?? options.mode
    const started = mode === 'cookie'
      ? cookieMode.start(request, reply)
      : mode === 'archive' ? archiveEngine().start(request, reply) : null
    if (!(started instanceof Promise)) {
      (request as WithSession)[kSession] = started
      done()
      return
    }
    started.then((session) => {
      (request as WithSession)[kSession] = session
      done()
    }, done)
  })

  fastify.addHook('onSend', function sessionOnSend (request, reply, payload, done) {
    const session = (request as WithSession)[kSession]
    if (session === null) {
      done(null, payload)
      return
    }
    let committing: Promise<void> | void
    try {
      committing = session[kEngine].commit(session)
    } catch (error) {
      done(error as Error)
      return
    }
    if (committing === undefined) {
      privateWhenSettingCookie(session, reply)
      done(null, payload)
    } else {
      committing.then(() => {
        privateWhenSettingCookie(session, reply)
        done(null, payload)
      }, done)
    }
  })

  fastify.addHook('onClose', async function sessionOnClose () {
    await (options.archive ?? defaultArchive)?.close?.()
  })
}

async function readyArchive (archive: Archive): Promise<void> {
  if (archive.ready === undefined) return
  try {
    await archive.ready()
  } catch (error) {
    throw archiveFailure(error)
  }
}

/** A response that sets a session cookie must not be kept by a shared cache, or it would hand the cookie to others. */
function privateWhenSettingCookie (session: Session, reply: FastifyReply): void {
  if (session[kState].setCookie !== undefined && !reply.hasHeader('cache-control')) reply.header('cache-control', CACHE_CONTROL)
}

/** The plugin: `app.register(fastifySessions, { secret })`. */
export const fastifySessions = fp(plugin, { fastify: '5.x', name: 'fastify-sessions' })
