import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify'
import type { ArchiveMode } from './archive-mode.js'
import type { CookieMode } from './cookie-mode.js'
import { FST_SESSION_INVALID_ARGUMENT, FST_SESSION_NOT_REVOCABLE } from './errors.js'
import type { ResolvedOptions, SessionMode } from './options.js'
import type { Session } from './session.js'
import type { SessionInfo, UserSessions } from './user-sessions.js'

/** Options of `app.sessions.revokeUser()`. */
export interface RevokeUserOptions {
  /** The handle of a session to keep: `request.session.handle`, for "sign out other devices". */
  except?: string | undefined
}

/** Options of `app.sessions.decode()`. */
export interface DecodeOptions {
  /** Which mode's cookie to read. @default the plugin's `mode` */
  mode?: SessionMode
}

const MODES: readonly unknown[] = ['cookie', 'archive']

/** A reply that can carry no header: the response of a session read outside a route. */
function detachedReply (): FastifyReply {
  const raw = { headersSent: true }
  return { raw, sent: true } as unknown as FastifyReply
}

/**
 * `app.sessions`: a user's sessions (list, revoke one, revoke all but this
 * one), and sessions read from a `Cookie` header outside a route. The per-user
 * calls work in archive mode, and in cookie mode with `revocable: true`.
 */
export class SessionsApi {
  readonly #options: ResolvedOptions
  readonly #users: UserSessions
  readonly #cookieMode: CookieMode
  readonly #archiveMode: () => ArchiveMode
  readonly #log: FastifyBaseLogger

  constructor (options: ResolvedOptions, users: UserSessions, cookieMode: CookieMode, archiveMode: () => ArchiveMode, log: FastifyBaseLogger) {
    this.#options = options
    this.#users = users
    this.#cookieMode = cookieMode
    this.#archiveMode = archiveMode
    this.#log = log
  }

  /** The live sessions of a user (bound with `request.session.bindUser()`), oldest first. */
  async list (userId: string): Promise<SessionInfo[]> {
    this.#checkIndexed()
    return await this.#users.list(userId, Date.now())
  }

  /** Ends one session, named by its handle; resolves whether there was such a session. */
  async revoke (handle: string): Promise<boolean> {
    this.#checkIndexed()
    return await this.#users.revoke(handle)
  }

  /** Ends every session of a user but the one whose handle is `except`; resolves how many it ended. */
  async revokeUser (userId: string, options: RevokeUserOptions = {}): Promise<number> {
    this.#checkIndexed()
    return await this.#users.revokeUser(userId, options.except)
  }

  /**
   * The session a `Cookie` header carries, for code outside a route (a raw
   * `upgrade` handler, socket.io): `null` when the header carries none that
   * is valid. Its changes can be saved in archive mode while its id stays the
   * same; anything that needs a new cookie (cookie mode, a new or regenerated
   * session) throws `FST_SESSION_HEADERS_SENT`, as no response can carry it.
   */
  async decode (cookieHeader: string | undefined, options: DecodeOptions = {}): Promise<Session | null> {
    const mode = options.mode ?? this.#options.mode
    if (!MODES.includes(mode)) throw new FST_SESSION_INVALID_ARGUMENT('app.sessions.decode(header, { mode })', "takes mode 'cookie' or 'archive'")
    if (cookieHeader !== undefined && typeof cookieHeader !== 'string') {
      throw new FST_SESSION_INVALID_ARGUMENT('app.sessions.decode(header)', 'takes the Cookie header as a string')
    }
    const request = {
      headers: cookieHeader === undefined ? {} : { cookie: cookieHeader },
      cookies: null,
      log: this.#log,
      protocol: 'https',
      raw: { headers: {} }
    } as unknown as FastifyRequest
    const reply = detachedReply()
    const session = mode === 'cookie' ? await this.#cookieMode.start(request, reply) : await this.#archiveMode().start(request, reply)
    return session.isNew ? null : session
  }

  #checkIndexed (): void {
    if (this.#options.mode === 'cookie' && !this.#options.revocable) throw new FST_SESSION_NOT_REVOCABLE()
  }
}
