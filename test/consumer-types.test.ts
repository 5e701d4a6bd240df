import { existsSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import ts from 'typescript'

const root = fileURLToPath(new URL('..', import.meta.url))
const fixture = path.join(root, 'types', 'consumers')

/** How a consumer's tsconfig may resolve modules; each is checked with and without `skipLibCheck`. */
const resolutions = {
  nodenext: { module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext },
  node16: { module: ts.ModuleKind.Node16, moduleResolution: ts.ModuleResolutionKind.Node16 },
  bundler: { module: ts.ModuleKind.ESNext, moduleResolution: ts.ModuleResolutionKind.Bundler }
}

// Six programs, each checking fastify's and the package's declarations: far more than tap's 30 s on a busy machine.
t.setTimeout(600_000)

/**
 * Every diagnostic of the consumer project under `overrides`, formatted as
 * tsc prints them. `previous`, a program of the same project that differs
 * only in `skipLibCheck`, lends its parsed files (as `tsc --watch` does); the
 * type checking is done anew.
 */
function typeCheck (overrides: ts.CompilerOptions, previous?: ts.Program): { program: ts.Program, diagnostics: string[] } {
  const configFile = ts.getParsedCommandLineOfConfigFile(path.join(fixture, 'tsconfig.json'), overrides, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (diagnostic) => { throw new Error(ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n')) }
  }) as ts.ParsedCommandLine
  const program = ts.createProgram({ rootNames: configFile.fileNames, options: configFile.options, ...(previous === undefined ? {} : { oldProgram: previous }) })
  const host: ts.FormatDiagnosticsHost = { getCanonicalFileName: (name) => name, getCurrentDirectory: () => root, getNewLine: () => '\n' }
  return { program, diagnostics: ts.getPreEmitDiagnostics(program).map((diagnostic) => ts.formatDiagnostic(diagnostic, host).trim()) }
}

t.test('the package is built, so its exports lead to declarations', async (t) => {
  t.ok(existsSync(path.join(root, 'dist', 'index.d.ts')), 'dist/index.d.ts exists (npm run build makes it)')
  t.ok(existsSync(path.join(root, 'dist', 'testing.d.ts')), 'dist/testing.d.ts exists')
})

for (const [name, resolution] of Object.entries(resolutions)) {
  let previous: ts.Program | undefined
  for (const skipLibCheck of [false, true]) {
    t.test(`a consumer importing fastify-sessions type-checks under ${name}, skipLibCheck ${skipLibCheck}`, async (t) => {
      const { program, diagnostics } = typeCheck({ ...resolution, skipLibCheck }, previous)
      previous = program
      t.ok(program.getSourceFiles().some((file) => file.fileName === path.join(root, 'dist', 'index.d.ts').replaceAll(path.sep, '/')),
        'fastify-sessions resolved to dist/index.d.ts through the package\'s exports')
      t.same(diagnostics, [], 'no diagnostics')
    })
  }
}
