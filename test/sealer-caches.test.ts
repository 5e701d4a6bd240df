import t from 'tap'
import { IronSealer } from '../lib/iron-token.js'
import { OTHER_SECRET, SECRET } from './helpers/app.js'
import { ironSeal, ironUnseal, withValidMac } from './helpers/iron.js'

const JSON_TEXT = '{"c":1,"t":1,"d":{}}'

t.test('a remembered token is still refused once its expiration passes', async (t) => {
  const sealer = new IronSealer([SECRET])
  const now = Date.now()
  const token = sealer.seal(JSON_TEXT, now + 1000)
  t.match(sealer.unseal(token, now), { json: JSON_TEXT, secretIndex: 0, expiresAt: now + 1000 })
  t.match(sealer.unseal(token, now + 999), { json: JSON_TEXT }, 'remembered')
  t.equal(sealer.unseal(token, now + 1000), undefined, 'expired though remembered')
  t.equal(new IronSealer([SECRET]).unseal(token, now + 1000), undefined, 'expired when first seen')
})

t.test('a token without an expiration never expires, remembered or not', async (t) => {
  const sealer = new IronSealer([SECRET])
  const token = await ironSeal({ c: 1, t: 1, d: {} })
  const later = Date.now() + 10 * 365 * 24 * 3600 * 1000
  t.match(sealer.unseal(token, later), { json: JSON_TEXT, expiresAt: 0 })
  t.match(sealer.unseal(token, later), { json: JSON_TEXT, expiresAt: 0 })
})

t.test('an expiration is read as the number its digits write, at every length', async (t) => {
  const sealer = new IronSealer([SECRET])
  // 13 digits (today's times), 15 (the longest summed digit by digit), 16, and one past 2^53 that Number rounds.
  for (const text of ['1767225600000', '999999999999999', '1000000000000001', '98765432109876543210']) {
    const token = await ironSeal({ c: 1, t: 1, d: {} }, SECRET, { ttl: 1 })
    const fields = token.split('*')
    fields[5] = text
    const forged = await withValidMac(fields)
    t.match(sealer.unseal(forged, 0), { expiresAt: Number(text) }, `${text.length} digits`)
  }
})

t.test('the remembered tokens are bounded: the oldest is forgotten and verified again when it comes back', async (t) => {
  const sealer = new IronSealer([SECRET], 1)
  const now = Date.now()
  const first = await ironSeal({ n: 1 })
  const second = await ironSeal({ n: 2 })
  t.match(sealer.unseal(first, now), { json: '{"n":1}' })
  t.match(sealer.unseal(second, now), { json: '{"n":2}' })
  t.match(sealer.unseal(first, now), { json: '{"n":1}' }, 'verified again, with its keys from the derived-key cache')
})

t.test('tokens with many foreign salts keep verifying as the derived-key cache turns over', async (t) => {
  const sealer = new IronSealer([SECRET], 4)
  const now = Date.now()
  const tokens: string[] = []
  for (let i = 0; i < 140; i++) tokens.push(await ironSeal({ i }))
  for (let i = 0; i < tokens.length; i++) t.match(sealer.unseal(tokens[i]!, now), { json: `{"i":${i}}` })
  t.match(sealer.unseal(tokens[0]!, now), { json: '{"i":0}' }, 'the first, long forgotten, still verifies')
})

t.test('the first secret seals, every secret unseals', async (t) => {
  const sealer = new IronSealer([SECRET, OTHER_SECRET])
  const token = sealer.seal(JSON_TEXT, Date.now() + 60_000)
  t.equal(await ironUnseal(token, SECRET).then(JSON.stringify), JSON_TEXT)
  const old = new IronSealer([OTHER_SECRET]).seal(JSON_TEXT, Date.now() + 60_000)
  t.match(sealer.unseal(old, Date.now()), { secretIndex: 1 })
})

t.test('each seal has its own iv, also past the first pool of them', async (t) => {
  const sealer = new IronSealer([SECRET])
  const ivs = new Set<string>()
  for (let i = 0; i < 600; i++) ivs.add(sealer.seal(JSON_TEXT, 0).split('*')[3]!)
  t.equal(ivs.size, 600)
})

t.test('the remembered tokens are bounded in bytes: a large token is never kept, and older ones go to make room', async (t) => {
  const now = Date.now()
  const sealer = new IronSealer([SECRET], 1024, 16 * 1024)
  const small = await ironSeal({ n: 1 })
  t.equal(sealer.unseal(small, now), sealer.unseal(small, now), 'a small token is remembered: the same answer comes back')
  const large = await ironSeal({ pad: 'x'.repeat(2500) })
  t.not(sealer.unseal(large, now), sealer.unseal(large, now), 'a token over a quarter of the budget is verified each time')
  const tokens: string[] = []
  for (let i = 0; i < 40; i++) tokens.push(await ironSeal({ i, pad: 'y'.repeat(100) }))
  const first = sealer.unseal(tokens[0]!, now)
  for (const token of tokens.slice(1)) sealer.unseal(token, now)
  t.not(sealer.unseal(tokens[0]!, now), first, 'the oldest was forgotten when the budget was full')
  const last = sealer.unseal(tokens[39]!, now)
  t.equal(sealer.unseal(tokens[39]!, now), last, 'the newest is still remembered')
})

t.test('a token that reuses a remembered token\'s MAC with other content is verified, and refused', async (t) => {
  const sealer = new IronSealer([SECRET])
  const now = Date.now()
  const token = sealer.seal(JSON_TEXT, now + 60_000)
  t.ok(sealer.unseal(token, now), 'remembered')
  const fields = token.split('*')
  const forged = [...fields.slice(0, 5), String(now + 120_000), ...fields.slice(6)].join('*')
  t.equal(sealer.unseal(forged, now), undefined, 'the later expiration is not under the MAC')
  t.ok(sealer.unseal(token, now), 'the original is still accepted')
})

t.test('by default a few recent tokens are remembered, so a returning browser skips the crypto while many visitors do not fill memory', async (t) => {
  const sealer = new IronSealer([SECRET])
  const now = Date.now()
  const tokens = Array.from({ length: 17 }, (_, i) => sealer.seal(`{"i":${i}}`, now + 60_000))
  const first = sealer.unseal(tokens[0]!, now)
  t.equal(sealer.unseal(tokens[0]!, now), first, 'the same answer while remembered')
  for (const token of tokens.slice(1, 16)) sealer.unseal(token, now)
  t.equal(sealer.unseal(tokens[0]!, now), first, 'still remembered among 16')
  sealer.unseal(tokens[16]!, now)
  const again = sealer.unseal(tokens[0]!, now)
  t.not(again, first, 'the 17th pushed the oldest out: verified again')
  t.same(again, first, 'to the same result')
})

t.test('by default a token of a 2.5 KB session is remembered, and one of a 4 KB session is not', async (t) => {
  const sealer = new IronSealer([SECRET])
  const now = Date.now()
  const kept = sealer.seal(JSON.stringify({ pad: 'x'.repeat(2500) }), now + 60_000)
  t.equal(sealer.unseal(kept, now), sealer.unseal(kept, now), 'remembered: the same answer comes back')
  const large = sealer.seal(JSON.stringify({ pad: 'x'.repeat(4000) }), now + 60_000)
  t.not(sealer.unseal(large, now), sealer.unseal(large, now), 'verified each time')
})
