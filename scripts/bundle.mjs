#!/usr/bin/env node
// Bundles the CLI into one ESM file (packages/cli/dist/wgmesh.mjs): ~2x faster start than
// loading hundreds of modules, and what the benchmarks, the demo and the netns tests run.
import { build } from 'esbuild'
import { chmodSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'

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

const root = new URL('..', import.meta.url).pathname
// --entry/--outfile: bundle another entry with exactly these settings (scripts/bench/memory.ts
// bundles a measurement entry that wraps this CLI)
const arg = (name, dflt) => { const i = process.argv.indexOf(name); return i > 0 ? process.argv[i + 1] : dflt }
const entry = arg('--entry', `${root}packages/cli/src/main.ts`)
const outfile = arg('--outfile', `${root}packages/cli/dist/wgmesh.mjs`)
// Footprint (scripts/bench/memory.ts measures it):
// * V8's young generation grows from 1 to 16 MiB semi-spaces (2 x 16 MiB of RSS) when an agent
//   has a few peers. --max-semi-space-size only works on node's command line, which users and
//   tests do not pass (they run `node wgmesh.mjs`), but --semi-space-growth-factor=1 set before
//   anything is allocated keeps the semi-spaces at their initial 1 MiB: ~-14 MiB at 8 members,
//   no measurable CPU cost for an agent's allocation rate. Set first thing in the banner, so it
//   runs before any bundled module. WGMESH_BUNDLE_V8_FLAGS overrides it ('' = none).
// * minify: V8 keeps the whole source text of the bundle as one string (large-object space):
//   2.2 MB → ~1 MB, ~-4 MiB RSS and less to parse. Names are mangled: stack traces map back
//   through the linked source map (node --enable-source-maps). WGMESH_BUNDLE_MINIFY=0: readable.
const v8Flags = process.env.WGMESH_BUNDLE_V8_FLAGS ?? '--semi-space-growth-factor=1'
const minify = process.env.WGMESH_BUNDLE_MINIFY !== '0'
await build({
  entryPoints: [entry],
  outfile,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  conditions: ['wgmesh-src'],
  inject: [`${root}scripts/polyfills.mjs`],
  banner: {
    js: (v8Flags !== '' ? `import { setFlagsFromString as __wgmeshV8Flags } from 'node:v8'; __wgmeshV8Flags(${JSON.stringify(v8Flags)});\n` : '') +
      "import { createRequire as __wgmeshCreateRequire } from 'node:module'; const require = __wgmeshCreateRequire(import.meta.url);"
  },
  minify,
  sourcemap: minify ? 'linked' : false,
  plugins: [inlineOwnPackageJson],
  legalComments: 'none',
  logLevel: 'warning'
})
chmodSync(outfile, 0o755)
console.log(`bundled ${outfile}`)
