/**
 * The loader users run (dist/wgmesh.mjs) compiles the bundle (dist/wgmesh.cjs) with V8's code
 * cache (dist/wgmesh.cjs.cache), made by the build: the cache is used by this Node; a cache made
 * for another source of the same length (V8 itself checks only the length) is not used, nor is
 * a missing one, and the program runs the same either way.
 */
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const DIST = fileURLToPath(new URL('../../packages/cli/dist/', import.meta.url))
const tmp = mkdtempSync(join(tmpdir(), 'wgmesh-cache-'))
after(() => { rmSync(tmp, { recursive: true, force: true }) })

function run (dir: string, args: string[]): { code: number | null, stdout: string, report: string } {
  const r = spawnSync(process.execPath, [join(dir, 'wgmesh.mjs'), ...args], { env: { ...process.env, WGMESH_CODE_CACHE_REPORT: '1' }, encoding: 'utf8', timeout: 20_000 })
  return { code: r.status, stdout: r.stdout, report: /wgmesh code cache: (\w+)/.exec(r.stderr)?.[1] ?? `no report in: ${r.stderr}` }
}

function copyDist (name: string): string {
  const dir = join(tmp, name)
  spawnSync('mkdir', ['-p', dir])
  for (const f of ['wgmesh.mjs', 'wgmesh.cjs', 'wgmesh.cjs.cache']) copyFileSync(join(DIST, f), join(dir, f))
  return dir
}

test('the build made a code cache, and this Node uses it', () => {
  for (const f of ['wgmesh.mjs', 'wgmesh.cjs', 'wgmesh.cjs.cache']) assert.ok(existsSync(join(DIST, f)), `${f}: run npm run build first`)
  const r = run(DIST, ['--version'])
  assert.equal(r.code, 0)
  assert.match(r.stdout, /^\d+\.\d+\.\d+/)
  assert.equal(r.report, 'used')
  assert.equal(run(DIST, ['info', '--help']).report, 'used')
})

test('a cache for another source of the same length is not used; the changed program runs', () => {
  const dir = copyDist('other-source')
  const src = readFileSync(join(dir, 'wgmesh.cjs'), 'utf8')
  // the same length, another program: the version string changes in place
  const version = /\b\d+\.\d+\.\d+\b/.exec(run(DIST, ['--version']).stdout)![0]
  const other = version.replace(/\d$/, d => String((Number(d) + 1) % 10))
  assert.ok(src.includes(`"${version}"`))
  writeFileSync(join(dir, 'wgmesh.cjs'), src.replaceAll(`"${version}"`, `"${other}"`))
  assert.equal(readFileSync(join(dir, 'wgmesh.cjs')).length, Buffer.byteLength(src))
  const r = run(dir, ['--version'])
  assert.equal(r.report, 'none')
  assert.equal(r.code, 0)
  assert.equal(r.stdout.trim(), other)
})

test('without a cache (or with a truncated one) it compiles as usual', () => {
  const dir = copyDist('no-cache')
  rmSync(join(dir, 'wgmesh.cjs.cache'))
  let r = run(dir, ['--version'])
  assert.equal(r.report, 'none')
  assert.equal(r.code, 0)
  writeFileSync(join(dir, 'wgmesh.cjs.cache'), readFileSync(join(DIST, 'wgmesh.cjs.cache')).subarray(0, 20))
  r = run(dir, ['--version'])
  assert.equal(r.report, 'none')
  assert.equal(r.code, 0)
  assert.match(r.stdout, /^\d+\.\d+\.\d+/)
})
