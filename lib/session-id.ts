import { hash } from 'node:crypto'
import { HmacSha256 } from './iron-crypto.js'
import { RandomPool } from './random-pool.js'
import { RecentRing, printAt } from './recent-ring.js'

// A session id is 24 bytes from the CSPRNG (192 bits), URL-safe base64 without
// padding: 32 characters. The cookie carries `<id>.<signature>`, the signature
// an HMAC-SHA256 of the id under the first secret; any secret verifies.
// The HMAC is computed as iron's is, two one-shot hashes over the key's
// padded blocks (no OpenSSL context per id): one is signed for every new
// session, and one verified for every returning visitor not remembered.

const ID_BYTES = 24
// 43 characters carry the 32-byte signature; the last one holds 4 bits and 2
// of padding, which must be zero, so that one signature has one spelling.
const SIGNED_ID = /^([A-Za-z0-9_-]{32})\.([A-Za-z0-9_-]{42}[AEIMQUYcgkosw048])$/
/**
 * Ids verified recently: a browser's requests close together verify once.
 * Not more, as a miss scans them all (a signature costs about 2 µs).
 */
const RECENT_MAX = 64

const ids = new RandomPool(ID_BYTES, 128)

/** A fresh random session id. */
export function createSessionId (): string {
  return ids.text('base64url')
}

/** A verified id cookie: the id and which secret (index) signed it. */
export interface VerifiedId {
  readonly id: string
  readonly secretIndex: number
}

/** SHA-256's block: HMAC hashes a longer key first (RFC 2104). */
const SHA256_BLOCK = 64

/** Signs ids with the first secret and verifies them with any. */
export class IdSigner {
  readonly #macs: readonly HmacSha256[]
  readonly #recent = new RecentRing<VerifiedId>(RECENT_MAX)

  constructor (secrets: readonly string[]) {
    this.#macs = secrets.map((secret) => {
      const key = Buffer.from(`fastify-sessions id ${secret}`)
      return new HmacSha256(key.length > SHA256_BLOCK ? hash('sha256', key, 'buffer') : key)
    })
  }

  sign (id: string): string {
    return `${id}.${(this.#macs[0] as HmacSha256).digest(id)}`
  }

  /** The id a cookie value carries, if this plugin signed it; `undefined` for anything else. */
  verify (value: string): VerifiedId | undefined {
    // The id's start tells cookies apart: 24 random bytes.
    const print = printAt(value, 0)
    const recent = this.#recent.get(value, print)
    if (recent !== undefined) return recent
    const match = SIGNED_ID.exec(value)
    if (match === null) return undefined
    const id = match[1] as string
    const mac = match[2] as string
    for (let i = 0; i < this.#macs.length; i++) {
      if (!(this.#macs[i] as HmacSha256).verify(id, mac)) continue
      const verified = { id, secretIndex: i }
      this.#recent.add(value, print, verified)
      return verified
    }
    return undefined
  }
}
