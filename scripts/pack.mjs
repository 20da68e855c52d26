#!/usr/bin/env node
// Builds the publishable npm package `wgmesh` (packaging/npm) from the one-file bundle and
// packs it: `npm run build && npm run pack` → packaging/npm/wgmesh-<version>.tgz
//
// The package has no dependencies: dist/wgmesh.cjs is the bundle (every library inlined,
// Promise.withResolvers polyfill injected), dist/wgmesh.mjs the loader that runs it
// (`#!/usr/bin/env node` first line) and dist/wgmesh.cjs.cache V8's code cache for it, so
// `npm install -g ./wgmesh-<version>.tgz` fetches nothing. Beside it: the man page and bash
// completion generated from the CLI's commander definitions (scripts/gen-docs.mjs), and the
// systemd unit and its settings file (packaging/systemd).
//
//   node scripts/pack.mjs [--out DIR]     (default DIR: packaging/npm; prints the tarball's path)
import { chmodSync, copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { isBuiltin } from 'node:module'
import { join, resolve } from 'node:path'
import { execFileSync } from 'node:child_process'
import { writeDocs } from './gen-docs.mjs'

const root = new URL('..', import.meta.url).pathname
const stage = join(root, 'packaging/npm')
const arg = (name, dflt) => { const i = process.argv.indexOf(name); return i > 0 ? process.argv[i + 1] : dflt }
const outDir = resolve(arg('--out', stage))

function fail (msg) {
  console.error(`pack: ${msg}`)
  process.exit(1)
}

const distDir = join(root, 'packages/cli/dist')
const bundlePath = join(distDir, 'wgmesh.cjs')
const loaderPath = join(distDir, 'wgmesh.mjs')
let bundle, loader
try { bundle = readFileSync(bundlePath, 'utf8'); loader = readFileSync(loaderPath, 'utf8') } catch { fail(`${bundlePath} or ${loaderPath} is missing: run 'npm run build' first`) }
if (!loader.startsWith('#!/usr/bin/env node\n')) fail('the loader does not start with #!/usr/bin/env node')

// self-contained: every module the bundle loads at run time is a Node builtin
const specifiers = new Set()
for (const m of bundle.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\brequire\s*\(\s*)["']([^"'\s()]+)["']/g)) specifiers.add(m[1])
const foreign = [...specifiers].filter(s => /^[@a-z.]/.test(s) && !isBuiltin(s))
if (foreign.length > 0) fail(`the bundle loads modules that are not Node builtins: ${foreign.join(', ')}`)

const pkg = JSON.parse(readFileSync(join(stage, 'package.json'), 'utf8'))
const { buildProgram, VERSION } = await import('@wgmesh/cli')
const cliPkg = JSON.parse(readFileSync(join(root, 'packages/cli/package.json'), 'utf8'))
if (pkg.version !== VERSION || cliPkg.version !== VERSION) {
  fail(`versions differ: packaging/npm ${pkg.version}, packages/cli ${cliPkg.version}, VERSION in program.ts ${VERSION}`)
}
const bundled = execFileSync(process.execPath, [loaderPath, '--version'], { encoding: 'utf8' }).trim()
if (bundled !== VERSION) fail(`the bundle says ${bundled}, the sources ${VERSION}: rebuild`)

rmSync(join(stage, 'dist'), { recursive: true, force: true })
rmSync(join(stage, 'share'), { recursive: true, force: true })
mkdirSync(join(stage, 'dist'), { recursive: true })
// the source map (5 MB) is not shipped: drop the comment that points at it
writeFileSync(join(stage, 'dist/wgmesh.cjs'), bundle.replace(/\n\/\/# sourceMappingURL=\S+\s*$/, '\n'))
writeFileSync(join(stage, 'dist/wgmesh.mjs'), loader)
chmodSync(join(stage, 'dist/wgmesh.mjs'), 0o755)
// the code cache is made for exactly the shipped source (the loader checks its hash): make it anew
execFileSync(process.execPath, [join(stage, 'dist/wgmesh.mjs'), '--version'], { env: { ...process.env, WGMESH_CODE_CACHE_WRITE: join(stage, 'dist/wgmesh.cjs.cache') }, stdio: ['ignore', 'ignore', 'inherit'] })
writeDocs(buildProgram(), join(stage, 'share'))
mkdirSync(join(stage, 'share/systemd'), { recursive: true })
for (const f of ['wgmesh.service', 'wgmesh.env']) copyFileSync(join(root, 'packaging/systemd', f), join(stage, 'share/systemd', f))

mkdirSync(outDir, { recursive: true })
const out = execFileSync('npm', ['pack', '--json', '--pack-destination', outDir], { cwd: stage, encoding: 'utf8' })
const [info] = JSON.parse(out)
const missing = pkg.files.filter(f => !info.files.some(x => x.path === f))
if (missing.length > 0) fail(`the tarball lacks ${missing.join(', ')}`)
console.log(join(outDir, info.filename))
