#!/usr/bin/env node
// Bundles the CLI into one ESM file (packages/cli/dist/wgmesh.mjs): ~2x faster start than
// loading hundreds of modules, and what the benchmarks, the demo and the netns tests run.
import { build } from 'esbuild'
import { chmodSync } from 'node:fs'

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
  legalComments: 'none',
  logLevel: 'warning'
})
chmodSync(outfile, 0o755)
console.log(`bundled ${outfile}`)
