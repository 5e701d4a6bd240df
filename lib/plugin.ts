import fastifyCookie from '@fastify/cookie'
import type { FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction, RouteOptions } from 'fastify'
import fp from 'fastify-plugin'
import { ArchiveMode, archiveFailure } from './archive-mode.js'
import { FileArchive } from './archives/file.js'
import { Codec } from './codec.js'
import { CookieMode } from './cookie-mode.js'
import { FST_SESSION_INVALID_OPTION } from './errors.js'
import { resolveOptions, type FastifySessionsOptions, type SessionMode } from './options.js'
import { kEngine, type Session } from './session.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** The request's session; `null` on routes with `config: { session: false }`. */
    session: Session
  }
  interface FastifyContextConfig {
    /** This route's session: `'cookie'`, `'archive'`, or `false` for none. @default the plugin's `mode` */
    session?: SessionMode | false
  }
}

const ROUTE_MODES: ReadonlyArray<unknown> = [undefined, false, 'cookie', 'archive']

function checkRouteConfig (route: RouteOptions): void {
  const mode = route.config?.session
  if (!ROUTE_MODES.includes(mode)) {
    throw new FST_SESSION_INVALID_OPTION(`config.session of ${route.method.toString()} ${route.url}`, "must be false, 'cookie' or 'archive'")
  }
}

async function plugin (fastify: FastifyInstance, rawOptions: FastifySessionsOptions): Promise<void> {
  const options = resolveOptions(rawOptions)
  if (options.archive?.ready !== undefined) {
    try {
      await options.archive.ready()
    } catch (error) {
      throw archiveFailure(error)
    }
  }
  if (!fastify.hasDecorator('parseCookie')) await fastify.register(fastifyCookie)
  const parse = (header: string): Record<string, string | undefined> => fastify.parseCookie(header)
  const codec = new Codec(options.types)
  const cookieMode = new CookieMode(options, codec, parse)
  // The archive is made on first use: an app whose routes all use cookies
  // never creates the default file archive's directory.
  let archiveMode: ArchiveMode | undefined
  const archive = (): ArchiveMode => (archiveMode ??= new ArchiveMode(options, codec, options.archive ?? new FileArchive(), parse))

  fastify.decorateRequest('session', null as unknown as Session)
  fastify.addHook('onRoute', checkRouteConfig)

  // The two hooks run on every request, so they take callbacks: a cookie-mode
  // session, and any session left unused, then costs no promise at all.
  fastify.addHook('onRequest', function sessionOnRequest (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) {
    const mode = request.routeOptions.config.session ?? options.mode
    if (mode === 'cookie') {
      request.session = cookieMode.start(request, reply)
      done()
    } else if (mode === 'archive') {
      archive().start(request, reply).then((session) => {
        request.session = session
        done()
      }, done)
    } else {
      done()
    }
  })

  fastify.addHook('onSend', function sessionOnSend (request, _reply, payload, done) {
    const session = request.session as Session | null
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
    if (committing === undefined) done(null, payload)
    else committing.then(() => done(null, payload), done)
  })

  fastify.addHook('onClose', async function sessionOnClose () {
    await archiveMode?.close()
  })
}

/** The plugin: `app.register(fastifySessions, { secret })`. */
export const fastifySessions = fp(plugin, { fastify: '5.x', name: 'fastify-sessions' })
