import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto'
import t from 'tap'
import { AesCbc, decodeCiphertext, decryptOnce, HmacSha256, MAC_TEXT_LENGTH } from '../lib/iron-crypto.js'

/** Plaintext lengths of every class: each block multiple from 0 to 5 blocks, one less and one more, then some long ones. */
const LENGTHS = [
  ...Array.from({ length: 6 }, (_, blocks) => [blocks * 16 - 1, blocks * 16, blocks * 16 + 1]).flat().filter((n) => n >= 0),
  1023, 1024, 1025, 4095, 4096, 4097, 20_000
]

/** A text of `length` UTF-16 units, ASCII with a few multi-byte characters mixed in. */
function textOf (length: number, seed: number): string {
  let text = ''
  for (let i = 0; i < length; i++) text += i % 29 === seed % 29 ? 'é✓'[i % 2] : String.fromCharCode(97 + ((i + seed) % 26))
  return text
}

function cbcEncrypt (key: Buffer, iv: Buffer, text: string): string {
  const cipher = createCipheriv('aes-256-cbc', key, iv)
  return Buffer.concat([cipher.update(text, 'utf8'), cipher.final()]).toString('base64url')
}

function cbcDecrypt (key: Buffer, iv: Buffer, encrypted: Buffer): string {
  const decipher = createDecipheriv('aes-256-cbc', key, iv)
  return Buffer.concat([decipher.update(encrypted), decipher.final()]).toString('utf8')
}

/** `blocks` raw blocks encrypted under CBC without padding: a ciphertext whose padding is whatever the last block says. */
function unpadded (key: Buffer, iv: Buffer, plain: Buffer): Buffer {
  return createCipheriv('aes-256-cbc', key, iv).setAutoPadding(false).update(plain)
}

t.test('the HMAC is the one node:crypto computes, for texts of every length and of several keys', async (t) => {
  const keys = [randomBytes(32), randomBytes(32), Buffer.alloc(0), randomBytes(64)]
  for (const key of keys) {
    const mac = new HmacSha256(key)
    for (const length of LENGTHS) {
      const text = textOf(length, length)
      t.equal(mac.digest(text), createHmac('sha256', key).update(text, 'utf8').digest('base64url'), `${key.length}-byte key, ${length} characters`)
    }
  }
  t.equal(new HmacSha256(keys[0]!).digest('').length, MAC_TEXT_LENGTH)
})

t.test('one HMAC gives the right MAC for texts whose lengths grow, shrink and repeat, and two HMACs do not share their input', async (t) => {
  const key = randomBytes(32)
  const mac = new HmacSha256(key)
  const other = new HmacSha256(randomBytes(32))
  // Past the first buffer, back to shorter texts, the same length twice with other texts, and the empty text.
  const lengths = [300, 300, 20_000, 5, 300, 4097, 4097, 0, 1]
  for (const [i, length] of lengths.entries()) {
    const text = textOf(length, i)
    other.digest(textOf(length + 7, i))
    t.equal(mac.digest(text), createHmac('sha256', key).update(text, 'utf8').digest('base64url'), `text ${i + 1}, ${length} characters`)
  }
})

t.test('a MAC verifies only in its own spelling, compared whole', async (t) => {
  const mac = new HmacSha256(randomBytes(32))
  const text = 'Fe26.2**salt*iv*ciphertext*'
  const right = mac.digest(text)
  t.ok(mac.verify(text, right))
  t.notOk(mac.verify(`${text}x`, right), 'another text')
  t.notOk(mac.verify(text, right.slice(0, -1)), 'one character short')
  t.notOk(mac.verify(text, `${right}A`), 'one character long')
  t.notOk(mac.verify(text, `${right}=`), 'padded')
  t.notOk(mac.verify(text, `${right.slice(0, 20)}${right[20] === 'A' ? 'B' : 'A'}${right.slice(21)}`), 'one character changed')
  t.notOk(mac.verify(text, `${right.slice(0, -1)}é`), 'a character outside ASCII')
  t.notOk(mac.verify(text, `${right.slice(0, -1)}${String.fromCharCode(right.charCodeAt(42) + 256)}`), 'a character whose low byte is the right one')
  // The last of 43 characters carries 2 bits of the digest and 4 padding bits: another spelling of the same bytes.
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
  const other = alphabet[alphabet.indexOf(right[42]!) + 1]!
  t.same(Buffer.from(right.slice(0, -1) + other, 'base64url'), Buffer.from(right, 'base64url'), 'the lenient decoding reads both the same')
  t.notOk(mac.verify(text, right.slice(0, -1) + other), 'the non-canonical spelling is refused')
})

t.test('encryption gives node:crypto\'s AES-256-CBC ciphertext for every length class, token after token, and decrypts it back', async (t) => {
  const key = randomBytes(32)
  const aes = new AesCbc(key)
  for (const length of LENGTHS) {
    for (let round = 0; round < 2; round++) {
      const text = textOf(length, round)
      const iv = randomBytes(16)
      const encrypted = aes.encrypt(text, iv)
      t.equal(encrypted, cbcEncrypt(key, iv, text), `${length} characters, round ${round + 1}: the same ciphertext`)
      t.equal(cbcDecrypt(key, iv, Buffer.from(encrypted, 'base64url')), text, 'node:crypto decrypts it')
      t.equal(aes.decrypt(Buffer.from(encrypted, 'base64url'), iv), text, 'and so does the kept context')
    }
  }
})

t.test('decryption reads node:crypto\'s ciphertexts in any order, with encryptions in between', async (t) => {
  const key = randomBytes(32)
  const aes = new AesCbc(key)
  const sealed = LENGTHS.map((length) => {
    const iv = randomBytes(16)
    return { iv, text: textOf(length, 3), encrypted: Buffer.from(cbcEncrypt(key, iv, textOf(length, 3)), 'base64url') }
  })
  for (const { iv, text, encrypted } of [...sealed].reverse()) {
    t.equal(aes.decrypt(encrypted, iv), text, `${text.length} characters`)
    aes.encrypt(text, randomBytes(16))
  }
  t.equal(decryptOnce(key, sealed[0]!.encrypted, sealed[0]!.iv), sealed[0]!.text, 'a one-off context decrypts the same')
})

t.test('ciphertext of no whole blocks, or with wrong padding, decrypts to nothing and leaves the context right', async (t) => {
  const key = randomBytes(32)
  const aes = new AesCbc(key)
  const iv = randomBytes(16)
  const block = (last: number[]): Buffer => {
    const plain = Buffer.alloc(32, 0x61)
    plain.set(last, 32 - last.length)
    return unpadded(key, iv, plain)
  }
  const wrong = {
    'no bytes': Buffer.alloc(0),
    'not whole blocks': randomBytes(17),
    'a last byte of 0': block([0]),
    'a last byte over 16': block([17]),
    'padding bytes that differ': block([3, 2, 3]),
    'a padding byte that differs at the start': block([5, 4, 4, 4])
  }
  const good = { iv: randomBytes(16), text: textOf(40, 1) }
  const goodEncrypted = Buffer.from(cbcEncrypt(key, good.iv, good.text), 'base64url')
  for (const [what, encrypted] of Object.entries(wrong)) {
    t.equal(aes.decrypt(encrypted, iv), undefined, `kept context: ${what}`)
    t.equal(decryptOnce(key, encrypted, iv), undefined, `one-off context: ${what}`)
    t.equal(aes.decrypt(goodEncrypted, good.iv), good.text, 'the next ciphertext still decrypts')
  }
  t.equal(aes.decrypt(block(Array<number>(16).fill(16)), iv), 'a'.repeat(16), 'a whole block of padding is right')
})

t.test('a ciphertext decodes as Buffer.from decodes it, into memory the next one reuses', async (t) => {
  const texts = [randomBytes(48), randomBytes(1024), randomBytes(16), randomBytes(9000), randomBytes(16), Buffer.alloc(0)].map((bytes) => bytes.toString('base64url'))
  for (const text of texts) t.same(decodeCiphertext(text), Buffer.from(text, 'base64url'), `${text.length} characters`)
  const first = decodeCiphertext(texts[0]!)
  const copy = Buffer.from(first)
  decodeCiphertext(texts[2]!)
  t.notSame(first.subarray(0, 16), copy.subarray(0, 16), 'the next call overwrites what the last returned')
  t.same(decodeCiphertext('AAAA*AAAA'), Buffer.from('AAAA*AAAA', 'base64url'), 'characters outside base64url are read as leniently')
})
