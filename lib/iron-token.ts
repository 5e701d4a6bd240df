import { createCipheriv, createDecipheriv, createHmac, pbkdf2Sync, randomFillSync, timingSafeEqual } from 'node:crypto'

// The iron `Fe26.2` token with iron's default settings (the ones `iron-webcrypto`
// uses): AES-256-CBC for the payload, HMAC-SHA256 over the rest, each key derived
// with PBKDF2-SHA1 (1 iteration) from the secret and a 256-bit salt written as hex.
//
//   Fe26.2*<passwordId>*<encSalt>*<iv>*<ciphertext>*<expiresAt>*<macSalt>*<mac>
//
// The format lets every token carry its own salts; iron picks them at random per
// token, which costs two key derivations per seal and two per unseal. Here each
// secret gets one pair of salts, derived from the secret itself, so every
// instance that shares the secret derives the same keys once and reuses them;
// every token still gets a fresh random IV. Tokens with other salts (sealed by
// `iron-webcrypto`, say) are verified the slow way and their keys remembered
// once the MAC proves they came from a holder of the secret.

const PREFIX = 'Fe26.2'
const IV_BYTES = 16
const KEY_BYTES = 32
const MAC_BYTES = 32
const EXPIRATION = /^(?:[1-9]\d*)?$/
// The MAC is the one field the MAC does not cover, and base64 decoding is
// lenient: accept only its one canonical spelling (43 characters, the last
// with zero padding bits), as iron's own string comparison does.
const MAC_TEXT = /^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$/
const PASSWORD_ID = /^\w*$/
const DERIVED_KEYS_KEPT = 256

function deriveKey (secret: string, salt: string): Buffer {
  return pbkdf2Sync(secret, salt, 1, KEY_BYTES, 'sha1')
}

function saltFor (secret: string, purpose: string): string {
  return createHmac('sha256', secret).update(`fastify-sessions ${purpose} salt`).digest('hex')
}

interface SecretKeys {
  secret: string
  encSalt: string
  encKey: Buffer
  macSalt: string
  macKey: Buffer
}

/** What `unseal` found: the JSON text and which secret (index) verified it. */
export interface Unsealed {
  readonly json: string
  readonly secretIndex: number
  /** The token's own expiration (ms since the epoch), or 0 when it has none. */
  readonly expiresAt: number
}

// Random IVs come from a pool filled a few KiB at a time: one call into the
// CSPRNG per 256 tokens instead of one per token.
const ivPool = Buffer.alloc(IV_BYTES * 256)
let ivOffset = ivPool.length

function nextIv (): Buffer {
  if (ivOffset === ivPool.length) {
    randomFillSync(ivPool)
    ivOffset = 0
  }
  const iv = Buffer.from(ivPool.subarray(ivOffset, ivOffset + IV_BYTES))
  ivOffset += IV_BYTES
  return iv
}

/** The memory a remembered token takes, roughly: two bytes a character of the token and of its JSON. */
function sizeOf (token: string, unsealed: Unsealed): number {
  return (token.length + unsealed.json.length) * 2
}

/** Seals and unseals iron tokens with a list of secrets: the first seals, all unseal. */
export class IronSealer {
  readonly #keys: readonly SecretKeys[]
  readonly #derived = new Map<string, Buffer>()
  readonly #recent = new Map<string, Unsealed>()
  readonly #recentMax: number
  readonly #recentBytes: number
  #bytes = 0

  /**
   * @param secrets at least one; validated by the caller
   * @param recentMax how many recently unsealed tokens to remember, so that a
   *   browser sending the same cookie again costs a map lookup
   * @param recentBytes how much memory those may take in all, counted as two
   *   bytes a character of the token and of its JSON; a token taking more than
   *   a sixteenth of it is never remembered
   */
  constructor (secrets: readonly string[], recentMax = 1024, recentBytes = 4 * 1024 * 1024) {
    this.#keys = secrets.map((secret) => {
      const encSalt = saltFor(secret, 'encryption')
      const macSalt = saltFor(secret, 'integrity')
      return { secret, encSalt, encKey: deriveKey(secret, encSalt), macSalt, macKey: deriveKey(secret, macSalt) }
    })
    this.#recentMax = recentMax
    this.#recentBytes = recentBytes
  }

  /**
   * Seals a JSON text with the first secret. `expiresAt` (ms since the epoch)
   * becomes the token's expiration field, which every iron implementation enforces.
   */
  seal (json: string, expiresAt: number): string {
    const keys = this.#keys[0] as SecretKeys
    const iv = nextIv()
    const cipher = createCipheriv('aes-256-cbc', keys.encKey, iv)
    const encrypted = cipher.update(json, 'utf8', 'base64url') + cipher.final('base64url')
    const base = `${PREFIX}**${keys.encSalt}*${iv.toString('base64url')}*${encrypted}*${expiresAt}`
    const mac = createHmac('sha256', keys.macKey).update(base).digest('base64url')
    return `${base}*${keys.macSalt}*${mac}`
  }

  /**
   * Verifies and decrypts a token sealed with any of the secrets. Returns
   * `undefined` for anything that is not a valid, unexpired token: callers
   * treat that as "no session", so no exception ever escapes.
   */
  unseal (token: string, now: number): Unsealed | undefined {
    const recent = this.#recent.get(token)
    if (recent !== undefined) {
      return recent.expiresAt !== 0 && recent.expiresAt <= now ? undefined : recent
    }
    const unsealed = this.#verify(token)
    if (unsealed === undefined || (unsealed.expiresAt !== 0 && unsealed.expiresAt <= now)) return undefined
    const bytes = sizeOf(token, unsealed)
    if (bytes * 16 > this.#recentBytes) return unsealed
    while (this.#recent.size >= this.#recentMax || this.#bytes + bytes > this.#recentBytes) {
      const [oldest, entry] = this.#recent.entries().next().value as [string, Unsealed]
      this.#recent.delete(oldest)
      this.#bytes -= sizeOf(oldest, entry)
    }
    this.#recent.set(token, unsealed)
    this.#bytes += bytes
    return unsealed
  }

  #verify (token: string): Unsealed | undefined {
    const parts = token.split('*')
    if (parts.length !== 8) return undefined
    const [prefix, passwordId, encSalt, ivB64, encryptedB64, expiration, macSalt, macB64] = parts as [string, string, string, string, string, string, string, string]
    if (prefix !== PREFIX || !PASSWORD_ID.test(passwordId) || !EXPIRATION.test(expiration)) return undefined
    if (encSalt === '' || macSalt === '' || !MAC_TEXT.test(macB64)) return undefined
    const given = Buffer.from(macB64, 'base64url')
    const iv = Buffer.from(ivB64, 'base64url')
    if (given.length !== MAC_BYTES || iv.length !== IV_BYTES) return undefined
    const base = token.slice(0, token.length - macSalt.length - macB64.length - 2)

    for (let i = 0; i < this.#keys.length; i++) {
      const keys = this.#keys[i] as SecretKeys
      const macKey = macSalt === keys.macSalt ? keys.macKey : this.#derivedKey(i, macSalt)
      if (!timingSafeEqual(createHmac('sha256', macKey).update(base).digest(), given)) continue
      // From here on the token is known to come from a holder of this secret,
      // so its salts may join the derived-key cache.
      this.#remember(i, macSalt, macKey)
      const encKey = encSalt === keys.encSalt ? keys.encKey : this.#derivedKey(i, encSalt)
      this.#remember(i, encSalt, encKey)
      try {
        const decipher = createDecipheriv('aes-256-cbc', encKey, iv)
        const json = decipher.update(encryptedB64, 'base64url', 'utf8') + decipher.final('utf8')
        return { json, secretIndex: i, expiresAt: expiration === '' ? 0 : Number(expiration) }
      } catch {
        // A valid MAC over ciphertext that does not decrypt: sealed with our
        // secret but not as iron does it. Foreign, like any other bad token.
        return undefined
      }
    }
    return undefined
  }

  #derivedKey (index: number, salt: string): Buffer {
    const keys = this.#keys[index] as SecretKeys
    return this.#derived.get(`${index}:${salt}`) ?? deriveKey(keys.secret, salt)
  }

  #remember (index: number, salt: string, key: Buffer): void {
    const keys = this.#keys[index] as SecretKeys
    if (salt === keys.encSalt || salt === keys.macSalt) return
    if (this.#derived.size >= DERIVED_KEYS_KEPT) {
      this.#derived.delete(this.#derived.keys().next().value as string)
    }
    this.#derived.set(`${index}:${salt}`, key)
  }
}
