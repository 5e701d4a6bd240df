import t from 'tap'
import { RedisArchive } from '../lib/index.js'
import { SHARD_TAGS, shardOf } from '../lib/archives/redis.js'
import { archiveConformance } from '../lib/testing.js'
import { useRedisCluster } from './helpers/redis.js'
import { instanceTests } from './helpers/redis-instances.js'

const cluster = await useRedisCluster(t)
if (cluster !== undefined) {
  const { client, connect, prefix } = cluster

  t.test('the conformance suite passes on a Cluster client', async (t) => {
    for (const { name, run } of archiveConformance(() => new RedisArchive({ client, prefix }))) await t.test(name, run)
  })

  t.test('two apps on one cluster', async (t) => {
    instanceTests(t, { client, prefix, connection: () => ({ client: connect(), prefix }) })
  })

  t.test('the 16 shards each have a hash tag on a slot of their own sixteenth, and every master holds some', async (t) => {
    const masters = new Set<string>()
    const slots = await client.cluster('SLOTS')
    for (const [shard, tag] of SHARD_TAGS.entries()) {
      const slot = await client.cluster('KEYSLOT', `${prefix}{${tag}}sessions`)
      t.equal(Math.floor(slot / 1024), shard, `shard ${shard}`)
      const [, , master] = slots.find(([from, to]) => slot >= from && slot <= to)!
      masters.add(String(master?.[1]))
    }
    t.equal(masters.size, 3)
  })

  t.test('a session and its shard\'s indexes share a slot, and the session is found where its id says', async (t) => {
    const own = `${prefix}layout:`
    const archive = new RedisArchive({ client, prefix: own })
    const id = 'ClusterSession_0123456789'
    await archive.set(id, 'session', '{"c":1}', 60_000)
    const shard = `${own}{${SHARD_TAGS[shardOf(id)] as string}}`
    const key = `${shard}{${id}}`
    t.equal(await client.type(key), 'hash')
    t.equal(await client.cluster('KEYSLOT', key), await client.cluster('KEYSLOT', `${shard}new-sessions`))
    t.equal(await client.cluster('KEYSLOT', key), await client.cluster('KEYSLOT', `${shard}sessions`))
    t.not(await client.zscore(`${shard}new-sessions`, id), null, 'on probation in its shard')
    t.equal(await archive.get(id, 'session'), '{"c":1}')
    t.equal(await client.zscore(`${shard}new-sessions`, id), null, 'found: established')
    t.not(await client.zscore(`${shard}sessions`, id), null, 'and still counted')
    await archive.removeDomain(id)
    t.equal(await client.exists(key, `${shard}sessions`, `${shard}new-sessions`), 0, 'gone, and out of the indexes')
  })

  t.test('each shard keeps a sixteenth of the limits: a creation removes the oldest new session of its own shard', async (t) => {
    const own = `${prefix}limits:`
    // Two sessions per shard, one of them new.
    const archive = new RedisArchive({ client, prefix: own, maxSessions: 32, maxNewSessions: 16 })
    const inShard = (shard: number, count: number): string[] => {
      const ids: string[] = []
      for (let n = 0; ids.length < count; n++) if (shardOf(`Domain_${n}`) === shard) ids.push(`Domain_${n}`)
      return ids
    }
    const [first, second, third] = inShard(3, 3) as [string, string, string]
    const [elsewhere] = inShard(4, 1) as [string]
    await archive.set(first, 'session', '1', 60_000)
    await archive.set(elsewhere, 'session', 'e', 60_000)
    await archive.set(second, 'session', '2', 60_000)
    t.equal(await archive.has(first, 'session'), false, 'the new session of that shard made room')
    t.equal(await archive.get(elsewhere, 'session'), 'e', 'another shard\'s new session stays')
    t.equal(await archive.get(second, 'session'), '2')
    await archive.set(third, 'session', '3', 60_000)
    t.equal(await archive.get(third, 'session'), '3', 'an established one and a new one fill the shard')
    await t.rejects(archive.set(inShard(3, 4)[3] as string, 'session', '4', 60_000), { code: 'FST_SESSION_ARCHIVE_AT_CAPACITY' }, 'established sessions fill it')
  })

  t.test('a prefix with braces is refused on a cluster, where the archive puts its own hash tags', async (t) => {
    t.throws(() => new RedisArchive({ client, prefix: 'app:{sessions}:' }), { code: 'FST_SESSION_INVALID_OPTION' })
    t.doesNotThrow(() => new RedisArchive({ client: cluster.client, prefix: 'app:' }))
  })
}
