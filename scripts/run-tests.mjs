#!/usr/bin/env node
// Runs one test tier with node:test. Tiers:
//   unit   packages/*/test/**/*.test.ts  (pure, no root, no network)
//   inproc test/inproc/*.test.ts         (real libp2p on 127.0.0.1, fake WireGuard)
//   netns  test/netns/*.test.ts          (root: network namespaces, real wireguard-go)
//   all    every tier in one run (one summary; what CI runs)
// Node 20's --test does not expand globs, so the file list is built here.
import { readdirSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { spawnSync } from 'node:child_process'

const root = new URL('..', import.meta.url).pathname
const tier = process.argv[2] ?? 'unit'
const extra = process.argv.slice(3)

function walk (dir, out = []) {
  let entries
  try { entries = readdirSync(dir) } catch { return out }
  for (const e of entries) {
    if (e === 'node_modules' || e === 'dist') continue
    const p = join(dir, e)
    if (statSync(p).isDirectory()) walk(p, out)
    else if (e.endsWith('.test.ts')) out.push(p)
  }
  return out
}

let files
if (tier === 'unit') {
  files = readdirSync(join(root, 'packages')).flatMap(p => walk(join(root, 'packages', p, 'test')))
} else if (tier === 'inproc' || tier === 'netns') {
  files = walk(join(root, 'test', tier))
} else if (tier === 'all') {
  files = [
    ...readdirSync(join(root, 'packages')).flatMap(p => walk(join(root, 'packages', p, 'test'))),
    ...walk(join(root, 'test', 'inproc')),
    ...walk(join(root, 'test', 'netns'))
  ]
} else {
  console.error(`unknown tier '${tier}' (unit|inproc|netns|all)`)
  process.exit(2)
}
files = files.filter(f => extra.length === 0 || extra.some(x => f.includes(x))).sort()
if (files.length === 0) {
  console.error(`no test files for tier '${tier}'`)
  process.exit(1)
}
const args = ['--conditions=wgmesh-src', '--import', 'tsx', '--import', join(root, 'scripts/polyfills.mjs'),
  '--test', '--test-concurrency=1', '--test-reporter=spec', ...files.map(f => relative(root, f))]
const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' })
process.exit(r.status ?? 1)
