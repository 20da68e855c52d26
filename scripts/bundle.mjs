#!/usr/bin/env node
// Bundles the CLI into one CommonJS file (packages/cli/dist/wgmesh.cjs) — ~2x faster start than
// loading hundreds of modules — and writes beside it the loader users run (wgmesh.mjs, from
// scripts/wgmesh-loader.mjs) and V8's code cache for the bundle (wgmesh.cjs.cache, made by
// running the loader once): a start then compiles nothing. CommonJS because Node 20 can hand
// V8 a code cache only for a script (vm.Script), not for an ES module. What the benchmarks, the
// demo and the netns tests run.
import { build } from 'esbuild'
import { chmodSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { execFileSync } from 'node:child_process'
import { dirname, join } from 'node:path'
import { isBuiltin } from 'node:module'

// Some dependencies read their own package.json at run time through createRequire
// (@achingbrain/ssdp does, for its SSDP signature). A bundle has no such file beside it:
// inline the two fields they read.
const inlineOwnPackageJson = {
  name: 'inline-own-package-json',
  setup (b) {
    b.onLoad({ filter: /@achingbrain[\\/]ssdp[\\/]dist[\\/]src[\\/]ssdp\.js$/ }, (args) => {
      const pkg = JSON.parse(readFileSync(join(dirname(args.path), '../../package.json'), 'utf8'))
      const src = readFileSync(args.path, 'utf8')
      const out = src.replace(/req\(["']\.\.\/\.\.\/package\.json["']\)/, JSON.stringify({ name: pkg.name, version: pkg.version }))
      if (out === src) throw new Error('bundle: @achingbrain/ssdp changed; update inlineOwnPackageJson')
      return { contents: out, loader: 'js' }
    })
  }
}

// No WebAssembly: noise's ChaCha20-Poly1305 and SHA-256 (@chainsafe/as-*) compile a WASM module at
// import, and the first one brings up V8's whole WASM engine: ~6 MiB of RSS per agent for a few
// KB/s of gossip. Noise gets node:crypto (OpenSSL) for every size — its own `nodeCrypto`, which
// it already uses above 1200 bytes. (pnet's XSalsa20 was the third; the agent's own gate,
// packages/agent/src/transport/mesh-gate.ts, uses OpenSSL's ChaCha20 instead.)
// Checked: the patterns must match, else the build fails (a dependency changed).
const noWasm = {
  name: 'no-wasm',
  setup (b) {
    const patch = (filter, edit, what) => b.onLoad({ filter }, (args) => {
      const src = readFileSync(args.path, 'utf8')
      const out = edit(src)
      if (out === src) throw new Error(`bundle: ${what} changed; update the no-wasm plugin in scripts/bundle.mjs`)
      return { contents: out, loader: 'js' }
    })
    patch(/@chainsafe[\\/]libp2p-noise[\\/]dist[\\/]src[\\/]crypto[\\/]index\.js$/, (src) => {
      const out = src
        .replace(/^import \{ newInstance, ChaCha20Poly1305 \} from '@chainsafe\/as-chacha20poly1305';\n/m, '')
        .replace(/^import \{ digest \} from '@chainsafe\/as-sha256';\n/m, '')
        .replace(/^const ctx = newInstance\(\);\nconst asImpl = new ChaCha20Poly1305\(ctx\);\n/m, '')
        .replace(/^export const asCrypto = \{\n[\s\S]*?\n\};\n/m, 'export const asCrypto = nodeCrypto;\n')
      return /as-chacha20poly1305|as-sha256|asImpl/.test(out) ? src : out
    }, '@chainsafe/libp2p-noise crypto/index.js')
  }
}

/**
 * Node's built-in modules the bundle requires (the loader loads them before it sets the V8 flags;
 * see scripts/wgmesh-loader.mjs), plus 'dns', which `net` loads on its first host-name lookup.
 */
function bundleBuiltins (code) {
  const names = new Set(['dns'])
  for (const m of code.matchAll(/\brequire\("([^"]+)"\)/g)) if (isBuiltin(m[1])) names.add(m[1].replace(/^node:/, ''))
  return [...names].sort()
}

const root = new URL('..', import.meta.url).pathname
// --entry/--outfile: bundle another entry with exactly these settings (scripts/bench/memory.ts
// bundles a measurement entry that wraps this CLI)
const arg = (name, dflt) => { const i = process.argv.indexOf(name); return i > 0 ? process.argv[i + 1] : dflt }
const entry = arg('--entry', `${root}packages/cli/src/main.ts`)
// with --outfile the bundle is run directly (no loader, no code cache): it sets its V8 flags itself
const standalone = arg('--outfile', undefined) !== undefined
const outfile = arg('--outfile', `${root}packages/cli/dist/wgmesh.cjs`)
// Footprint (scripts/bench/memory.ts measures it):
// * V8's young generation grows from 1 to 16 MiB semi-spaces (2 x 16 MiB of RSS) when an agent
//   has a few peers. --max-semi-space-size only works on node's command line, which users and
//   tests do not pass (they run `node wgmesh.mjs`), but --semi-space-growth-factor=1 set before
//   anything is allocated keeps the semi-spaces at their initial 1 MiB: ~-14 MiB at 8 members,
//   no measurable CPU cost for an agent's allocation rate. Set by the loader before it compiles
//   the bundle (a standalone bundle: first thing in its banner), so before any bundled module
//   runs. WGMESH_BUNDLE_V8_FLAGS overrides it ('' = none).
// * minify: V8 keeps the whole source text of the bundle as one string (large-object space):
//   2.2 MB → ~1 MB, ~-4 MiB RSS and less to parse. Names are mangled: positions (stack traces,
//   CPU profiles) map back through the linked source map wgmesh.cjs.map (node:module's
//   SourceMap.findEntry). WGMESH_BUNDLE_MINIFY=0: readable.
// * localeCompare: libp2p's peer store sorts multiaddrs and protocol names with
//   String.prototype.localeCompare, only for a stable order; its first call maps ICU's collation
//   data from the node binary (~2.2 MiB of RSS). The bundle makes the one-argument form an
//   ordinal comparison (the same order for the ASCII strings sorted there); calls naming a
//   locale or options still get ICU. wgmesh's own code never needs collation.
const ordinalLocaleCompare = 'String.prototype.localeCompare = (function (icu) { return function localeCompare (that, ...rest) { if (rest.length > 0) return icu.call(this, that, ...rest); const a = String(this); const b = String(that); return a < b ? -1 : a > b ? 1 : 0 } })(String.prototype.localeCompare);\n'
// * No optimizing tiers (--no-opt --no-sparkplug --no-maglev) and --optimize-for-size: the
//   agent's JavaScript is glue around node:crypto, sockets and child processes, run once at start
//   and a few times a second after; nothing in it is hot enough to repay compiling it again.
//   Measured (memory.ts lab, 8 members): 74.6 → 58.1 MiB RSS, idle CPU unchanged (1.0 %), and
//   8 agents starting at once on 2 cores used less CPU to a full mesh, not more (TurboFan's
//   background compiles competed with the start-up for the two cores): docs/PERFORMANCE.md.
//   The savings are the compilers' own memory and the pages of their code in the node binary.
const v8Flags = process.env.WGMESH_BUNDLE_V8_FLAGS ?? '--semi-space-growth-factor=1 --no-opt --no-sparkplug --no-maglev --optimize-for-size'
const minify = process.env.WGMESH_BUNDLE_MINIFY !== '0'
await build({
  entryPoints: [entry],
  outfile,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  // one dependency builds a require() from import.meta.url (@achingbrain/ssdp, see above)
  define: { 'import.meta.url': '__wgmeshMetaUrl' },
  conditions: ['wgmesh-src'],
  inject: [`${root}scripts/polyfills.mjs`],
  banner: {
    js: (standalone && v8Flags !== '' ? `require('node:v8').setFlagsFromString(${JSON.stringify(v8Flags)});\n` : '') +
      "const __wgmeshMetaUrl = require('node:url').pathToFileURL(__filename).href;\n" + ordinalLocaleCompare
  },
  minify,
  sourcemap: minify ? 'linked' : false,
  plugins: [inlineOwnPackageJson, noWasm],
  legalComments: 'none',
  logLevel: 'warning'
})
chmodSync(outfile, 0o755)
console.log(`bundled ${outfile}`)
if (!standalone) {
  const dist = `${root}packages/cli/dist`
  const loader = readFileSync(`${root}scripts/wgmesh-loader.mjs`, 'utf8')
  for (const p of ["'__WGMESH_V8_FLAGS__'", "'__WGMESH_BUILTINS__'"]) if (!loader.includes(p)) throw new Error(`bundle: scripts/wgmesh-loader.mjs lost its ${p} placeholder`)
  writeFileSync(`${dist}/wgmesh.mjs`, loader.replace("'__WGMESH_V8_FLAGS__'", JSON.stringify(v8Flags)).replace("'__WGMESH_BUILTINS__'", JSON.stringify(bundleBuiltins(readFileSync(outfile, 'utf8')))), { mode: 0o755 })
  chmodSync(`${dist}/wgmesh.mjs`, 0o755)
  // the code cache: what one run of the CLI compiled (module set-up and commander's parse);
  // functions first run later are compiled as usual
  rmSync(`${dist}/wgmesh.cjs.cache`, { force: true })
  execFileSync(process.execPath, [`${dist}/wgmesh.mjs`, '--version'], { env: { ...process.env, WGMESH_CODE_CACHE_WRITE: `${dist}/wgmesh.cjs.cache` }, stdio: ['ignore', 'ignore', 'inherit'] })
  console.log(`wrote ${dist}/wgmesh.mjs (loader) and ${dist}/wgmesh.cjs.cache (code cache)`)
}
