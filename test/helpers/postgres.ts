import { randomBytes } from 'node:crypto'
import pg from 'pg'
import type { Test } from 'tap'

const CONNECTION = { host: '127.0.0.1', port: 5432, user: 'postgres', database: 'postgres', connectionTimeoutMillis: 1000 }
const WHERE = `postgres://${CONNECTION.user}@${CONNECTION.host}:${CONNECTION.port}/${CONNECTION.database}`
const HOW_TO_RUN = 'start a PostgreSQL there with trust authentication for the user postgres'

async function answers (): Promise<boolean> {
  const client = new pg.Client(CONNECTION)
  client.on('error', () => {}) // a refused connection is the answer "no"
  try {
    await client.connect()
    await client.query('SELECT 1')
    return true
  } catch {
    return false
  } finally {
    await client.end().catch(() => {})
  }
}

/**
 * The PostgreSQL on 127.0.0.1:5432, with a pool and a schema of this test's
 * own, dropped with everything in it when the test ends. Without PostgreSQL
 * the test is skipped with one line saying how to run it, except under CI,
 * where it fails.
 */
export async function usePostgres (t: Test): Promise<{ pool: pg.Pool, schema: string } | undefined> {
  if (!await answers()) {
    if (process.env['CI'] === 'true') t.fail(`PostgreSQL is required under CI: nothing answers at ${WHERE}`)
    else t.plan(0, `no PostgreSQL at ${WHERE}; ${HOW_TO_RUN}`)
    return undefined
  }
  const pool = new pg.Pool(CONNECTION)
  const schema = `fastify_sessions_test_${randomBytes(6).toString('hex')}`
  await pool.query(`CREATE SCHEMA "${schema}"`)
  t.teardown(async () => {
    await pool.query(`DROP SCHEMA "${schema}" CASCADE`)
    await pool.end()
  })
  return { pool, schema }
}
