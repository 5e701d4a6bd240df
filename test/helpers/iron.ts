import * as Iron from 'iron-webcrypto'
import { IronSealer } from '../../lib/iron-token.js'
import { SECRET } from './app.js'

/** What the plugin seals: creation and issue times (ms) and the data. */
export interface SessionPayload {
  c: number
  t: number
  d: Record<string, unknown>
}

/** A session payload, created and issued now unless told otherwise. */
export function sessionPayload (
  d: Record<string, unknown>,
  times: { created?: number, issued?: number } = {}
): SessionPayload {
  const now = Date.now()
  return { c: times.created ?? now, t: times.issued ?? now, d }
}

/** Seals `value` the way any iron implementation does, with `iron-webcrypto`. */
export function ironSeal (value: unknown, secret: string = SECRET, options: Partial<Iron.SealOptions> = {}): Promise<string> {
  return Iron.seal(value, secret, { ...Iron.defaults, ...options })
}

/**
 * Seals `value` as the plugin does, with the salts it derives from `secret`
 * and an iron expiration a year away: a token that a read accepts without
 * re-issuing it, as it re-issues one with other salts.
 */
export function pluginSeal (value: unknown, secret: string = SECRET): string {
  return new IronSealer([secret]).seal(JSON.stringify(value), Date.now() + 365 * 86_400_000)
}

/** Unseals a token with `iron-webcrypto`; rejects when it is not a valid seal for `secret`. */
export function ironUnseal (token: string, secret: string = SECRET): Promise<unknown> {
  return Iron.unseal(token, secret, Iron.defaults)
}

/** The eight `*`-separated fields of a token. */
export function tokenFields (token: string): string[] {
  return token.split('*')
}

/**
 * Reseals a token's base string (its first six fields) with a MAC computed
 * under `secret` and `macSalt`, as a holder of the secret would: for tokens
 * whose MAC is valid but whose content is not what the plugin writes.
 */
export async function withValidMac (fields: readonly string[], secret: string = SECRET): Promise<string> {
  const base = fields.slice(0, 6).join('*')
  const macSalt = fields[6] as string
  const mac = await Iron.hmacWithPassword(secret, { ...Iron.defaults.integrity, salt: macSalt }, base)
  return `${base}*${macSalt}*${mac.digest}`
}
