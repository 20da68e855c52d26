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
const outfile = `${root}packages/cli/dist/wgmesh.mjs`
await build({
  entryPoints: [`${root}packages/cli/src/main.ts`],
  outfile,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  conditions: ['wgmesh-src'],
  inject: [`${root}scripts/polyfills.mjs`],
  banner: {
    js: "import { createRequire as __wgmeshCreateRequire } from 'node:module'; const require = __wgmeshCreateRequire(import.meta.url);"
  },
  plugins: [inlineOwnPackageJson],
  legalComments: 'none',
  logLevel: 'warning'
})
chmodSync(outfile, 0o755)
console.log(`bundled ${outfile}`)
