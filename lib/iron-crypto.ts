import { createCipheriv, createDecipheriv, hash } from 'node:crypto'

// The two primitives of an iron token, HMAC-SHA256 and AES-256-CBC, computed
// without building an OpenSSL context per token: building one (a Hmac, a
// Cipheriv) costs more than the work itself on a token of a few hundred bytes.

const BLOCK = 16
const SHA256_BLOCK = 64
const SHA256_BYTES = 32
/** The length of a SHA-256 digest written in unpadded base64url. */
export const MAC_TEXT_LENGTH = 43

/**
 * HMAC-SHA256 (RFC 2104) with one key, as two one-shot SHA-256 hashes:
 * `H((K ^ opad) || H((K ^ ipad) || text))`. The same bytes as
 * `createHmac('sha256', key)`. Each instance keeps its two inputs in buffers
 * of its own that start with the key's padded block, written once, so a MAC
 * only writes the text and the inner hash after them.
 */
export class HmacSha256 {
  /** `K ^ ipad`, then room for the text: grown for a longer text, never shrunk. */
  #inner: Buffer
  /** The start of `#inner` last hashed: an application's tokens are mostly of a few lengths, so the view is mostly reused. */
  #innerView: Buffer
  /** `K ^ opad`, then the inner hash. */
  readonly #outer = Buffer.alloc(SHA256_BLOCK + SHA256_BYTES)

  /** @param key at most 64 bytes (iron's keys are 32) */
  constructor (key: Buffer) {
    this.#inner = Buffer.alloc(SHA256_BLOCK, 0x36)
    this.#outer.fill(0x5c, 0, SHA256_BLOCK)
    for (let i = 0; i < key.length; i++) {
      this.#inner[i] = (this.#inner[i] as number) ^ (key[i] as number)
      this.#outer[i] = (this.#outer[i] as number) ^ (key[i] as number)
    }
    this.#innerView = this.#inner
  }

  /** The MAC of `text` (as UTF-8), in unpadded base64url. */
  digest (text: string): string {
    let inner = this.#inner
    // UTF-8 takes at most three bytes per UTF-16 unit.
    if (SHA256_BLOCK + text.length * 3 > inner.length) {
      const grown = Buffer.alloc(SHA256_BLOCK + text.length * 3)
      inner.copy(grown, 0, 0, SHA256_BLOCK)
      inner = this.#inner = grown
    }
    const end = SHA256_BLOCK + inner.write(text, SHA256_BLOCK, 'utf8')
    let view = this.#innerView
    if (view.buffer !== inner.buffer || view.length !== end) view = this.#innerView = inner.subarray(0, end)
    const outer = this.#outer
    outer.write(hash('sha256', view, 'binary'), SHA256_BLOCK, 'binary')
    return hash('sha256', outer, 'base64url')
  }

  /**
   * Whether `mac` is exactly the MAC of `text` as `digest` writes it: one
   * spelling only, as iron's own string comparison has it. Every character is
   * compared, whatever the first difference, and the differences are OR-ed
   * together without a branch on them, so the time taken tells nothing of
   * where the two differ. The same guarantee as `crypto.timingSafeEqual`,
   * without writing both texts into buffers first.
   */
  verify (text: string, mac: string): boolean {
    if (mac.length !== MAC_TEXT_LENGTH) return false
    const expected = this.digest(text)
    let difference = 0
    for (let i = 0; i < MAC_TEXT_LENGTH; i++) difference |= mac.charCodeAt(i) ^ expected.charCodeAt(i)
    return difference === 0
  }
}

/** Working memory for the plaintext being padded; grown for a longer text, never shrunk. */
let plain = Buffer.alloc(4096)
/** Working memory for the ciphertext being decrypted, and the view of it last handed out. */
let cipherText = Buffer.alloc(4096)
let cipherView = cipherText.subarray(0, 0)

/**
 * The bytes of a ciphertext written in base64url, decoded into working memory
 * that the next call overwrites: valid until then, which is long enough for
 * `AesCbc.decrypt` and `decryptOnce`. Decoded as leniently as `Buffer.from`.
 */
export function decodeCiphertext (text: string): Buffer {
  if (text.length > cipherText.length) cipherText = Buffer.alloc(text.length)
  const length = cipherText.write(text, 0, 'base64url')
  if (cipherView.buffer !== cipherText.buffer || cipherView.length !== length) cipherView = cipherText.subarray(0, length)
  return cipherView
}

/**
 * AES-256-CBC with PKCS#7 padding under one key, on one cipher and one
 * decipher context that live as long as this object and are never finalised.
 *
 * Why this is still plain CBC. A CBC context carries one value from call to
 * call: the last ciphertext block it wrote (encrypting) or read (decrypting),
 * which it XORs into the next block as the IV would be. We keep a copy of that
 * block, `chain`, and XOR the first block of each token with `chain ^ iv`, so
 * the two copies of `chain` cancel and each token is computed exactly as
 * `createCipheriv('aes-256-cbc', key, iv)` would compute it:
 *
 *   encrypt: C1 = E(P1 ^ (chain ^ iv) ^ chain) = E(P1 ^ iv), then Ci = E(Pi ^ Ci-1)
 *   decrypt: P1 = D(C1) ^ chain ^ (chain ^ iv) = D(C1) ^ iv, then Pi = D(Ci) ^ Ci-1
 *
 * - The IV is the caller's, random per token (as CBC needs it: unpredictable
 *   before the encryption): the chaining value is never used as an IV, which
 *   is what made TLS 1.0's chained IVs predictable. It only cancels itself.
 * - Padding is off in both contexts, so every call consumes and returns whole
 *   blocks and holds nothing back: `encrypt` pads itself, and `decrypt` takes
 *   only a whole, non-empty number of blocks, so the context's state is always
 *   the last block of the last call.
 * - `decrypt` is meant for ciphertext whose MAC has already been verified
 *   (encrypt-then-MAC, as iron does it): its padding check, like any other
 *   failure, gives only `undefined`, and only for tokens sealed with the key.
 * - JavaScript runs one call at a time, so nothing else uses a context between
 *   the correction and the update.
 */
export class AesCbc {
  readonly #cipher
  readonly #decipher
  readonly #encryptChain = Buffer.alloc(BLOCK)
  readonly #decryptChain = Buffer.alloc(BLOCK)

  constructor (key: Buffer) {
    this.#cipher = createCipheriv('aes-256-cbc', key, this.#encryptChain).setAutoPadding(false)
    this.#decipher = createDecipheriv('aes-256-cbc', key, this.#decryptChain).setAutoPadding(false)
  }

  /** `text` as UTF-8, padded and encrypted under `iv` (16 bytes): the ciphertext in unpadded base64url. */
  encrypt (text: string, iv: Buffer): string {
    if (text.length * 3 + BLOCK > plain.length) plain = Buffer.alloc(text.length * 3 + BLOCK)
    const length = plain.write(text, 0, 'utf8')
    const padded = (length & ~(BLOCK - 1)) + BLOCK
    plain.fill(padded - length, length, padded)
    const chain = this.#encryptChain
    for (let i = 0; i < BLOCK; i++) plain[i] = (plain[i] as number) ^ (chain[i] as number) ^ (iv[i] as number)
    const encrypted = this.#cipher.update(plain.subarray(0, padded))
    keepLastBlock(encrypted, padded, chain)
    return encrypted.toString('base64url')
  }

  /** The UTF-8 text of `encrypted` (whole blocks) under `iv`, or undefined when its padding is not PKCS#7. */
  decrypt (encrypted: Buffer, iv: Buffer): string | undefined {
    const length = encrypted.length
    if (length === 0 || length % BLOCK !== 0) return undefined
    const decrypted = this.#decipher.update(encrypted)
    const chain = this.#decryptChain
    for (let i = 0; i < BLOCK; i++) decrypted[i] = (decrypted[i] as number) ^ (chain[i] as number) ^ (iv[i] as number)
    keepLastBlock(encrypted, length, chain)
    return unpad(decrypted)
  }
}

/** Copies the block of `bytes` that ends at `end` into `chain`; byte by byte, which costs less than the view `Buffer#copy` makes for it. */
function keepLastBlock (bytes: Buffer, end: number, chain: Buffer): void {
  for (let i = 0, from = end - BLOCK; i < BLOCK; i++) chain[i] = bytes[from + i] as number
}

/** The UTF-8 text of a decrypted buffer once its PKCS#7 padding is checked and dropped; undefined when the padding is wrong. */
function unpad (decrypted: Buffer): string | undefined {
  const length = decrypted.length
  const pad = decrypted[length - 1] as number
  if (pad === 0 || pad > BLOCK) return undefined
  let wrong = 0
  for (let i = length - pad; i < length - 1; i++) wrong |= (decrypted[i] as number) ^ pad
  return wrong === 0 ? decrypted.toString('utf8', 0, length - pad) : undefined
}

/** A one-off AES-256-CBC decryption with its own context, for keys seen too rarely to keep one. */
export function decryptOnce (key: Buffer, encrypted: Buffer, iv: Buffer): string | undefined {
  const length = encrypted.length
  if (length === 0 || length % BLOCK !== 0) return undefined
  return unpad(createDecipheriv('aes-256-cbc', key, iv).setAutoPadding(false).update(encrypted))
}
