// A Redis Cluster of three masters on spare ports, each redis-server with its
// files in one temporary directory: `start()` resolves once every node reports
// `cluster_state:ok`; `stop()` kills the servers of every cluster started here
// and removes their directories. The cluster tests start theirs here, and the
// benchmark harness too, through benchmarks/redis-cluster.js.
import { execFile, spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'

const HOST = '127.0.0.1'
const MASTERS = 3
const run = promisify(execFile)
const running = new Set()

/** Whether `port` can be listened on now. */
async function free (port) {
  const server = createServer()
  const listening = await new Promise((resolve) => {
    server.once('error', () => resolve(false))
    server.listen(port, HOST, () => resolve(true))
  })
  if (listening) await new Promise((resolve) => server.close(resolve))
  return listening
}

/** A port that is free, and so is the cluster bus port 10,000 above it. */
async function sparePort (taken) {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 10_000)
    if (!taken.includes(port) && await free(port) && await free(port + 10_000)) return port
  }
}

/** What `redis-cli` prints for one command to the node on `port`, or '' when it does not answer. */
async function ask (port, ...command) {
  try {
    return (await run('redis-cli', ['-h', HOST, '-p', String(port), ...command])).stdout
  } catch {
    return ''
  }
}

async function until (condition, what) {
  for (let attempt = 0; attempt < 200; attempt++) {
    if (await condition()) return
    await sleep(50)
  }
  throw new Error(`the Redis Cluster did not come up: ${what}`)
}

/**
 * Starts a cluster. Resolves `{ nodes, stop }`: `nodes` the masters'
 * `{ host, port }`, as ioredis's `Cluster` takes them; `stop()` ends this one.
 */
export async function start () {
  const dir = await mkdtemp(path.join(tmpdir(), 'fastify-sessions-cluster-'))
  const children = []
  const nodes = []
  const stop = async () => {
    running.delete(stop)
    await Promise.all(children.map((child) => child.exitCode === null && child.signalCode === null
      ? new Promise((resolve) => { child.once('exit', resolve); child.kill('SIGKILL') })
      : undefined))
    await rm(dir, { recursive: true, force: true })
  }
  running.add(stop)
  try {
    for (let i = 0; i < MASTERS; i++) {
      const port = await sparePort(nodes.map((node) => node.port))
      nodes.push({ host: HOST, port })
      children.push(spawn('redis-server', [
        '--port', String(port), '--bind', HOST, '--dir', dir, '--cluster-enabled', 'yes',
        '--cluster-config-file', path.join(dir, `nodes-${port}.conf`), '--save', '', '--appendonly', 'no', '--daemonize', 'no'
      ], { stdio: 'ignore' }))
    }
    for (const { port } of nodes) await until(async () => (await ask(port, 'ping')).startsWith('PONG'), `nothing answers on port ${port}`)
    await run('redis-cli', ['--cluster', 'create', ...nodes.map(({ host, port }) => `${host}:${port}`), '--cluster-replicas', '0', '--cluster-yes'])
    for (const { port } of nodes) {
      await until(async () => (await ask(port, 'cluster', 'info')).includes('cluster_state:ok'), `port ${port} never reported cluster_state:ok`)
    }
    return { nodes, stop }
  } catch (error) {
    await stop()
    throw error
  }
}

/** Stops every cluster started here and not stopped yet. */
export async function stop () {
  await Promise.all([...running].map((stopOne) => stopOne()))
}
