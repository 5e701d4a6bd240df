import { createHmac, pbkdf2Sync } from 'node:crypto'
import { RandomPool } from './random-pool.js'
import { RecentRing, printAt } from './recent-ring.js'
import { AesCbc, decodeCiphertext, decryptOnce, HmacSha256 } from './iron-crypto.js'

// The iron `Fe26.2` token with iron's default settings (the ones `iron-webcrypto`
// uses): AES-256-CBC for the payload, HMAC-SHA256 over the rest, each key derived
// with PBKDF2-SHA1 (1 iteration) from the secret and a salt written as hex.
//
//   Fe26.2*<passwordId>*<encSalt>*<iv>*<ciphertext>*<expiresAt>*<macSalt>*<mac>
//
// The format lets every token carry its own salts; iron picks them at random per
// token, which costs two key derivations per seal and two per unseal. Here each
// secret gets one pair of salts, derived from the secret itself, so every
// instance that shares the secret derives the same keys once and reuses them;
// every token still gets a fresh random IV. The salts are 16 hex characters,
// where iron's random ones are 64: a salt derived from the secret adds nothing
// to the secret's own strength at any length (a guess of the secret gives its
// salt too), so the longer ones would only make every cookie 96 bytes longer.
// Tokens with other salts (sealed by `iron-webcrypto`, or by an earlier version
// with 64-character salts) are verified the slow way and their keys remembered
// once the MAC proves they came from a holder of the secret.

const PREFIX = 'Fe26.2*'
const IV_BYTES = 16
/** 16 bytes in unpadded base64url, as iron writes them. */
const IV_TEXT_LENGTH = 22
const KEY_BYTES = 32
/** The length of the salts each secret seals with, in hex characters. */
export const SALT_LENGTH = 16
const DERIVED_KEYS_KEPT = 256

function deriveKey (secret: string, salt: string): Buffer {
  return pbkdf2Sync(secret, salt, 1, KEY_BYTES, 'sha1')
}

function saltFor (secret: string, purpose: string): string {
  return createHmac('sha256', secret).update(`fastify-sessions ${purpose} salt`).digest('hex').slice(0, SALT_LENGTH)
}

interface SecretKeys {
  secret: string
  encSalt: string
  aes: AesCbc
  macSalt: string
  mac: HmacSha256
}

/** What `unseal` found: the JSON text and which secret (index) verified it. */
export interface Unsealed {
  readonly json: string
  readonly secretIndex: number
  /**
   * Whether the token is best sealed again: an older secret sealed it, or it
   * carries salts other than this secret's own, which cost a slower path on
   * every read until it is.
   */
  readonly stale: boolean
  /** The token's own expiration (ms since the epoch), or 0 when it has none. */
  readonly expiresAt: number
}

// Random IVs: one call into the CSPRNG per 256 tokens instead of one per token.
const ivs = new RandomPool(IV_BYTES, 256)

/** The IV of the token being verified. */
const tokenIv = Buffer.alloc(IV_BYTES)

/** Whether `text` from `start` to `end` holds only `\w` characters (iron's password ids). */
function isWord (text: string, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i)
    if (!((c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95)) return false
  }
  return true
}

/** The expiration field from `start` to `end`: 0 when empty, -1 unless it is a whole number without leading zeros. */
function expirationOf (text: string, start: number, end: number): number {
  if (start === end) return 0
  if (text.charCodeAt(start) === 48) return -1
  let value = 0
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i)
    if (c < 48 || c > 57) return -1
    value = value * 10 + c - 48
  }
  // Summed digit by digit, a number is exact up to 15 digits (years past 30,000 in ms); a longer one is read as Number reads it.
  return end - start <= 15 ? value : Number(text.slice(start, end))
}

/** The memory a remembered token takes, roughly: two bytes a character of the token and of its JSON. */
function sizeOf (token: string, unsealed: Unsealed): number {
  return (token.length + unsealed.json.length) * 2
}

/** Seals and unseals iron tokens with a list of secrets: the first seals, all unseal. */
export class IronSealer {
  readonly #keys: readonly SecretKeys[]
  readonly #derived = new Map<string, Buffer>()
  /** Recently unsealed tokens, told apart by the start of their MAC. */
  readonly #recent: RecentRing<Unsealed>
  readonly #recentBytes: number

  /**
   * @param secrets at least one; validated by the caller
   * @param recentMax how many recently unsealed tokens to remember, so that a
   *   browser sending the same cookie again (a page and the requests it makes
   *   at once) costs a scan of a few numbers
   * @param recentBytes how much memory those may take in all, counted as two
   *   bytes a character of the token and of its JSON; a token taking more than
   *   a quarter of it is never remembered. Few on purpose: what is remembered
   *   survives collections, and V8 doubles its young generation once enough
   *   has survived (64 tokens of a 1 KB session: peak RSS 99 MB against 83)
   */
  constructor (secrets: readonly string[], recentMax = 16, recentBytes = 64 * 1024) {
    this.#keys = secrets.map((secret) => {
      const encSalt = saltFor(secret, 'encryption')
      const macSalt = saltFor(secret, 'integrity')
      return { secret, encSalt, aes: new AesCbc(deriveKey(secret, encSalt)), macSalt, mac: new HmacSha256(deriveKey(secret, macSalt)) }
    })
    this.#recent = new RecentRing(recentMax, recentBytes)
    this.#recentBytes = recentBytes
  }

  /**
   * Seals a JSON text with the first secret. `expiresAt` (ms since the epoch)
   * becomes the token's expiration field, which every iron implementation enforces.
   */
  seal (json: string, expiresAt: number): string {
    const keys = this.#keys[0] as SecretKeys
    const iv = ivs.bytes()
    const encrypted = keys.aes.encrypt(json, iv)
    const base = `${PREFIX}*${keys.encSalt}*${iv.toString('base64url')}*${encrypted}*${expiresAt}`
    return `${base}*${keys.macSalt}*${keys.mac.digest(base)}`
  }

  /**
   * Verifies and decrypts a token sealed with any of the secrets. Returns
   * `undefined` for anything that is not a valid, unexpired token: callers
   * treat that as "no session", so no exception ever escapes.
   */
  unseal (token: string, now: number): Unsealed | undefined {
    const macStart = token.lastIndexOf('*') + 1
    const print = printAt(token, macStart)
    const recent = this.#recent.get(token, print)
    if (recent !== undefined) return recent.expiresAt !== 0 && recent.expiresAt <= now ? undefined : recent
    const unsealed = this.#verify(token, macStart, token.slice(macStart))
    if (unsealed === undefined || (unsealed.expiresAt !== 0 && unsealed.expiresAt <= now)) return undefined
    const bytes = sizeOf(token, unsealed)
    if (bytes * 4 <= this.#recentBytes) this.#recent.add(token, print, unsealed, bytes)
    return unsealed
  }

  #verify (token: string, macStart: number, mac: string): Unsealed | undefined {
    // The seven separators, found without splitting the token.
    if (!token.startsWith(PREFIX)) return undefined
    const idEnd = token.indexOf('*', PREFIX.length)
    const encSaltEnd = token.indexOf('*', idEnd + 1)
    const ivEnd = token.indexOf('*', encSaltEnd + 1)
    const encryptedEnd = token.indexOf('*', ivEnd + 1)
    const expirationEnd = token.indexOf('*', encryptedEnd + 1)
    const macSaltEnd = token.indexOf('*', expirationEnd + 1)
    // Eight fields exactly: the last separator found in order is the one before the MAC.
    if (idEnd === -1 || encSaltEnd === -1 || ivEnd === -1 || encryptedEnd === -1 || expirationEnd === -1 || macSaltEnd !== macStart - 1) return undefined
    if (!isWord(token, PREFIX.length, idEnd) || encSaltEnd === idEnd + 1 || macSaltEnd === expirationEnd + 1) return undefined
    const expiresAt = expirationOf(token, encryptedEnd + 1, expirationEnd)
    if (expiresAt === -1) return undefined
    // Decoded leniently, as the MAC covers exactly the text it came from.
    if (ivEnd - encSaltEnd - 1 !== IV_TEXT_LENGTH || tokenIv.write(token.slice(encSaltEnd + 1, ivEnd), 'base64url') !== IV_BYTES) return undefined
    const base = token.slice(0, expirationEnd)
    const encSalt = token.slice(idEnd + 1, encSaltEnd)
    const macSalt = token.slice(expirationEnd + 1, macSaltEnd)

    for (let i = 0; i < this.#keys.length; i++) {
      const keys = this.#keys[i] as SecretKeys
      if (macSalt === keys.macSalt) {
        if (!keys.mac.verify(base, mac)) continue
      } else {
        const macKey = this.#derivedKey(i, macSalt)
        if (!new HmacSha256(macKey).verify(base, mac)) continue
        // From here on the token is known to come from a holder of this secret,
        // so its salts may join the derived-key cache.
        this.#remember(i, macSalt, macKey)
      }
      const encrypted = decodeCiphertext(token.slice(ivEnd + 1, encryptedEnd))
      let json: string | undefined
      if (encSalt === keys.encSalt) {
        json = keys.aes.decrypt(encrypted, tokenIv)
      } else {
        const encKey = this.#derivedKey(i, encSalt)
        this.#remember(i, encSalt, encKey)
        json = decryptOnce(encKey, encrypted, tokenIv)
      }
      // A valid MAC over ciphertext that does not decrypt: sealed with our
      // secret but not as iron does it. Foreign, like any other bad token.
      return json === undefined ? undefined : { json, secretIndex: i, expiresAt, stale: i !== 0 || macSalt !== keys.macSalt || encSalt !== keys.encSalt }
    }
    return undefined
  }

  #derivedKey (index: number, salt: string): Buffer {
    const keys = this.#keys[index] as SecretKeys
    return this.#derived.get(`${index}:${salt}`) ?? deriveKey(keys.secret, salt)
  }

  #remember (index: number, salt: string, key: Buffer): void {
    if (this.#derived.size >= DERIVED_KEYS_KEPT) {
      this.#derived.delete(this.#derived.keys().next().value as string)
    }
    this.#derived.set(`${index}:${salt}`, key)
  }
}
