import { execFile } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t from 'tap'

const root = fileURLToPath(new URL('..', import.meta.url))
const manifest = JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8')) as {
  scripts: Record<string, string>
  peerDependencies: Record<string, string>
  repository: { url: string }
  homepage: string
  bugs: { url: string }
}

/** The paths `npm pack` would put in the tarball, from the built `dist/` as it is now (no build is run). */
async function packedFiles (): Promise<string[]> {
  const { stdout } = await promisify(execFile)('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root })
  const [pack] = JSON.parse(stdout) as Array<{ files: Array<{ path: string }> }>
  return (pack?.files ?? []).map((file) => file.path)
}

t.test('the tarball holds the build, the sources its maps name, the licence and the security policy, and no tests', async (t) => {
  const files = await packedFiles()
  for (const file of ['package.json', 'README.md', 'LICENSE', 'SECURITY.md', 'dist/index.js', 'dist/index.d.ts', 'dist/testing.js', 'dist/testing.d.ts']) {
    t.ok(files.includes(file), file)
  }
  t.notOk(files.some((file) => file.startsWith('test/') || file.startsWith('.gen/') || file.startsWith('types/')), 'no tests or generated sessions')

  const maps = files.filter((file) => file.endsWith('.map'))
  t.ok(maps.length > 0, 'source maps are shipped')
  const unresolved = []
  for (const map of maps) {
    const { sources, sourceRoot = '' } = JSON.parse(await readFile(path.join(root, map), 'utf8')) as { sources: string[], sourceRoot?: string }
    for (const source of sources) {
      const target = path.posix.normalize(path.posix.join(path.posix.dirname(map), sourceRoot, source))
      if (!files.includes(target)) unresolved.push(`${map} -> ${source}`)
    }
  }
  t.same(unresolved, [], 'every source a map names is in the tarball')
})

t.test('installing the package runs no script of its own', async (t) => {
  for (const script of ['preinstall', 'install', 'postinstall', 'prepare']) t.notOk(script in manifest.scripts, script)
  t.equal(manifest.scripts['prepack'], 'npm run build', 'the build runs when the tarball is made')
  for (const script of ['test', 'start', 'bench', 'test:load']) t.match(manifest.scripts[script], /^npm run build && /, `${script} builds first`)
})

t.test('the package page links to its repository, home and issues; ioredis 5 and 6 both satisfy the peer range', async (t) => {
  t.equal(manifest.repository.url, 'git+https://github.com/fastify-sessions/fastify-sessions.git')
  t.equal(manifest.homepage, 'https://github.com/fastify-sessions/fastify-sessions#readme')
  t.equal(manifest.bugs.url, 'https://github.com/fastify-sessions/fastify-sessions/issues')
  t.equal(manifest.peerDependencies['ioredis'], '^5.0.0 || ^6.0.0')
  t.match(await readFile(path.join(root, 'LICENSE'), 'utf8'), /^MIT License\n\nCopyright \(c\) 2026 fastify-sessions contributors\n/)
})
