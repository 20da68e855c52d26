#!/usr/bin/env node
// Runs one test tier with node:test. Tiers:
//   unit   packages/*/test/**/*.test.ts  (pure, no root, no network)
//   inproc test/inproc/*.test.ts         (real libp2p on 127.0.0.1, fake WireGuard)
//   netns  test/netns/*.test.ts          (root: network namespaces, real wireguard-go)
//   all    every tier in one run (one summary; what CI runs)
// Node 20's --test does not expand globs, so the file list is built here.
// A tier whose directory is missing or holds no test files is an error (exit 1), checked for
// each tier of `all` separately: renaming or emptying a tier must never give a green run.
import { existsSync, readdirSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { spawnSync } from 'node:child_process'

const root = new URL('..', import.meta.url).pathname
const tier = process.argv[2] ?? 'unit'
const extra = process.argv.slice(3)

function walk (dir, out = []) {
  for (const e of readdirSync(dir)) {
    if (e === 'node_modules' || e === 'dist') continue
    const p = join(dir, e)
    if (statSync(p).isDirectory()) walk(p, out)
    else if (e.endsWith('.test.ts')) out.push(p)
  }
  return out
}

function fail (msg) {
  console.error(`run-tests: ${msg}`)
  process.exit(1)
}

/** The test files of one tier; exits non-zero when its directory is missing or has none. */
function tierFiles (name) {
  let files
  if (name === 'unit') {
    const pkgs = join(root, 'packages')
    if (!existsSync(pkgs)) fail(`tier 'unit': ${relative(root, pkgs)}/ is missing`)
    files = readdirSync(pkgs).filter(p => existsSync(join(pkgs, p, 'test'))).flatMap(p => walk(join(pkgs, p, 'test')))
  } else {
    const dir = join(root, 'test', name)
    if (!existsSync(dir) || !statSync(dir).isDirectory()) fail(`tier '${name}': directory ${relative(root, dir)}/ is missing`)
    files = walk(dir)
  }
  if (files.length === 0) fail(`tier '${name}' has no test files (*.test.ts)`)
  return files
}

const TIERS = ['unit', 'inproc', 'netns']
let files
if (TIERS.includes(tier)) files = tierFiles(tier)
else if (tier === 'all') files = TIERS.flatMap(tierFiles)
else {
  console.error(`unknown tier '${tier}' (unit|inproc|netns|all)`)
  process.exit(2)
}
files = files.filter(f => extra.length === 0 || extra.some(x => f.includes(x))).sort()
if (files.length === 0) fail(`no test files of tier '${tier}' match ${extra.map(x => `'${x}'`).join(' ')}`)
const args = ['--conditions=wgmesh-src', '--import', 'tsx', '--import', join(root, 'scripts/polyfills.mjs'),
  '--test', '--test-concurrency=1', '--test-reporter=spec', ...files.map(f => relative(root, f))]
const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' })
process.exit(r.status ?? 1)
