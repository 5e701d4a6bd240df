import t from 'tap'
import { createHmac } from 'node:crypto'
import { createSessionId, IdSigner } from '../lib/session-id.js'
import { OTHER_SECRET, SECRET } from './helpers/app.js'

t.test('ids are 192 random bits, URL-safe, and never repeat', async (t) => {
  const ids = new Set(Array.from({ length: 5000 }, createSessionId))
  t.equal(ids.size, 5000)
  for (const id of [...ids].slice(0, 50)) t.match(id, /^[A-Za-z0-9_-]{32}$/)
})

t.test('a signed id verifies with its secret and no other', async (t) => {
  const signer = new IdSigner([SECRET])
  const id = createSessionId()
  const signed = signer.sign(id)
  t.same(signer.verify(signed), { id, secretIndex: 0 })
  t.equal(new IdSigner([OTHER_SECRET]).verify(signed), undefined)
  t.same(new IdSigner([OTHER_SECRET, SECRET]).verify(signed), { id, secretIndex: 1 }, 'an older secret still verifies, and says so')
})

t.test('verification stays right past the number of ids it remembers', async (t) => {
  const signer = new IdSigner([SECRET])
  const first = signer.sign(createSessionId())
  const many = Array.from({ length: 1100 }, () => signer.sign(createSessionId()))
  t.ok(signer.verify(first))
  for (const value of many) signer.verify(value)
  t.ok(signer.verify(first), 'an id forgotten from the recent list verifies again')
  t.ok(many.every((value) => signer.verify(value) !== undefined))
  const flipped = first.at(-10) === 'A' ? 'B' : 'A'
  t.equal(signer.verify(`${first.slice(0, -10)}${flipped}${first.slice(-9)}`), undefined, 'a changed signature does not')
})

t.test('a signature has one spelling: padding bits in its last character are refused', async (t) => {
  const signer = new IdSigner([SECRET])
  const signed = signer.sign(createSessionId())
  const last = signed.at(-1) as string
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
  const sameBits = alphabet[alphabet.indexOf(last) + 1] as string // the next character differs only in a padding bit
  t.ok(signer.verify(signed))
  t.equal(signer.verify(`${signed.slice(0, -1)}${sameBits}`), undefined)
})

t.test('the signature is HMAC-SHA256 of the id, so cookies signed before stay valid, whatever the secret length', async (t) => {
  for (const secret of [SECRET, 'k'.repeat(32), 's'.repeat(44), 'l'.repeat(300), 'é'.repeat(40)]) {
    const id = createSessionId()
    const mac = createHmac('sha256', Buffer.from(`fastify-sessions id ${secret}`)).update(id).digest('base64url')
    t.equal(new IdSigner([secret]).sign(id), `${id}.${mac}`, `a secret of ${secret.length} characters`)
    t.same(new IdSigner([OTHER_SECRET, secret]).verify(`${id}.${mac}`), { id, secretIndex: 1 })
  }
})
