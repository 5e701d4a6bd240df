import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify'
import { setCookies } from './app.js'

/**
 * A browser's cookie jar, reduced to what sessions need: each `Set-Cookie`
 * of a response replaces the cookie of that name, and one with `Max-Age=0`
 * removes it. Requests carry every cookie held, in the order they were set.
 */
export class Browser {
  readonly cookies = new Map<string, string>()

  /** Takes the cookies a response sets, as a browser does. */
  take (response: LightMyRequestResponse): LightMyRequestResponse {
    for (const line of setCookies(response)) {
      const pair = line.slice(0, line.indexOf(';'))
      const equals = pair.indexOf('=')
      const name = pair.slice(0, equals)
      if (/; Max-Age=0(;|$)/.test(line)) this.cookies.delete(name)
      else this.cookies.set(name, pair.slice(equals + 1))
    }
    return response
  }

  /** The `Cookie` header this browser sends, or undefined when it holds none. */
  header (): string | undefined {
    if (this.cookies.size === 0) return undefined
    return [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; ')
  }

  /** Sends a request with this browser's cookies, without taking the response's. */
  send (app: FastifyInstance, options: InjectOptions | string): Promise<LightMyRequestResponse> {
    const request = typeof options === 'string' ? { url: options } : options
    const cookie = this.header()
    return app.inject({ ...request, headers: { ...request.headers, ...(cookie === undefined ? {} : { cookie }) } })
  }

  /** Sends a request with this browser's cookies and takes the response's. */
  async visit (app: FastifyInstance, options: InjectOptions | string): Promise<LightMyRequestResponse> {
    return this.take(await this.send(app, options))
  }

  /** A second browser holding the same cookies now: a request sent before an earlier response arrived. */
  copy (): Browser {
    const other = new Browser()
    for (const [name, value] of this.cookies) other.cookies.set(name, value)
    return other
  }

  names (): string[] {
    return [...this.cookies.keys()].sort()
  }
}
