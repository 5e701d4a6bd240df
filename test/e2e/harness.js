// What the browser suite needs around it: the demo as a child process, a
// headless Chromium with a fresh profile, a Redis probe, and a tiny runner
// that prints one line per test and a closing count.
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium } from 'playwright-core'

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium'

const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync'
]

const cleanups = []

/** Runs `fn` at the end of the suite, latest first, whatever happened. */
export function atEnd (fn) {
  cleanups.push(fn)
}

export async function cleanUp () {
  while (cleanups.length > 0) {
    const fn = cleanups.pop()
    try {
      await fn()
    } catch (error) {
      console.error(`clean-up failed: ${error.message}`)
    }
  }
}

export function chromiumInstalled () {
  return existsSync(CHROMIUM)
}

export async function tempDir (prefix) {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix))
  atEnd(() => rm(dir, { recursive: true, force: true }))
  return dir
}

/** Whether a Redis answers PING on host:port within a second. */
export function redisAnswers (host = '127.0.0.1', port = 6379) {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port })
    const done = (answer) => {
      socket.destroy()
      resolve(answer)
    }
    socket.setTimeout(1000, () => done(false))
    socket.on('error', () => done(false))
    socket.on('connect', () => socket.write('PING\r\n'))
    socket.on('data', (data) => done(data.toString().startsWith('+PONG')))
  })
}

/**
 * Starts `examples/app.js` on a free loopback port (`PORT=0`) with `env`, and
 * resolves once it prints the URL to open. `stop()` sends SIGTERM (SIGKILL
 * after 5 s) and resolves to how it exited: `{ code, signal }`.
 */
export function startDemo (env) {
  const child = spawn(process.execPath, [path.join(ROOT, 'examples/app.js')], {
    cwd: ROOT,
    env: { ...process.env, SESSION_SECRET: '', LOG_LEVEL: 'warn', ...env, PORT: '0', HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let output = ''
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
    const exit = await exited
    clearTimeout(timer)
    return exit
  }
  atEnd(stop)
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the demo did not start within 20 s:\n${output}`)), 20_000)
    const onData = (data) => {
      output += data
      const match = /open (http:\/\/127\.0\.0\.1:\d+)\//.exec(output)
      if (match !== null) {
        clearTimeout(timer)
        resolve({ url: match[1], output: () => output, stop })
      }
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', onData)
    exited.then(({ code }) => {
      clearTimeout(timer)
      reject(new Error(`the demo exited with ${code} before it started:\n${output}`))
    })
  })
}

/** A headless Chromium on a profile of its own, removed when closed. */
export async function launchBrowser () {
  const profile = await tempDir('fastify-sessions-e2e-profile-')
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 960, height: 640 }
  })
  atEnd(() => context.close())
  context.setDefaultTimeout(10_000)
  context.setDefaultNavigationTimeout(15_000)
  return context
}

const tests = []

/** Registers a test; `fn` runs in order with the others. */
export function test (name, fn) {
  tests.push({ name, fn })
}

/** Runs every registered test, prints `ok`/`not ok` per test and the closing count; resolves to the number failed. */
export async function runTests () {
  let passed = 0
  let failed = 0
  for (const { name, fn } of tests) {
    try {
      await fn()
      passed++
      console.log(`ok - ${name}`)
    } catch (error) {
      failed++
      console.log(`not ok - ${name}`)
      console.log(String(error.stack ?? error).split('\n').map((line) => `    ${line}`).join('\n'))
    }
  }
  tests.length = 0
  return { passed, failed }
}
