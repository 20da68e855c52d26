#!/usr/bin/env node
// wgmesh — what `wgmesh` runs. The program itself is the one-file bundle beside this file
// (wgmesh.cjs, every library inlined); this loader compiles it with V8's code cache
// (wgmesh.cjs.cache, written by the build), so a start skips parsing and compiling ~1 MB of
// JavaScript. Measured here (docs/PERFORMANCE.md): `wgmesh --version` 0.17 s of CPU as an ES
// module bundle, 0.19 s as this CommonJS bundle compiled from source, 0.14 s from the cache;
// 8 agents starting at once on 2 cores are CPU-bound, so each start's CPU counts. Without a
// usable cache (another Node version, another V8 flag set, a cache from another build) it
// compiles as usual; nothing else differs.
// Written by scripts/bundle.mjs from scripts/wgmesh-loader.mjs: edit that one.
import { setFlagsFromString } from 'node:v8'
import { readFileSync, writeFileSync, renameSync } from 'node:fs'
import { createHash } from 'node:crypto'
import Module, { createRequire } from 'node:module'
import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Script } from 'node:vm'

// V8 flags are part of what a code cache is checked against: the bundle's cache is made and used
// with the same ones (the build runs this loader to make it). See scripts/bundle.mjs.
const V8_FLAGS = '__WGMESH_V8_FLAGS__'
// Node's own modules come with a code cache made under V8's default flags, which V8 rejects once
// any flag is changed: each built-in module loaded after setFlagsFromString is compiled from
// source (~20 ms of CPU per start for the ~45 the agent loads). So the built-ins the bundle
// requires (listed by the build) are loaded first, under the default flags, then the flags set.
const BUILTINS = '__WGMESH_BUILTINS__'
if (V8_FLAGS !== '') {
  const req = createRequire(import.meta.url)
  for (const m of BUILTINS) req(m)
  setFlagsFromString(V8_FLAGS)
}

const file = fileURLToPath(new URL('./wgmesh.cjs', import.meta.url))
const cacheFile = `${file}.cache`
const source = readFileSync(file, 'utf8')
// V8 checks a cache against the source's length only: the cache file starts with the SHA-256
// of the source it was made from, and is used only for exactly that source
const sourceHash = createHash('sha256').update(source).digest()
let cachedData
try {
  const c = readFileSync(cacheFile)
  if (c.length > 32 && c.subarray(0, 32).equals(sourceHash)) cachedData = c.subarray(32)
} catch {
  // no cache (a build without one, or removed): compile as usual
}
const script = new Script(Module.wrap(source.replace(/^#!.*/, '')), { filename: file, cachedData })
// WGMESH_CODE_CACHE_REPORT=1: say on stderr whether the cache was used (tests check it is)
if (process.env.WGMESH_CODE_CACHE_REPORT === '1') {
  process.stderr.write(`wgmesh code cache: ${cachedData === undefined ? 'none' : script.cachedDataRejected === true ? 'rejected' : 'used'}\n`)
}
// WGMESH_CODE_CACHE_WRITE=PATH (the build only): write this run's code cache there at exit,
// with everything compiled by then
const writeTo = process.env.WGMESH_CODE_CACHE_WRITE
if (writeTo !== undefined && writeTo !== '') {
  delete process.env.WGMESH_CODE_CACHE_WRITE
  process.on('exit', () => {
    writeFileSync(`${writeTo}.tmp`, Buffer.concat([sourceHash, script.createCachedData()]))
    renameSync(`${writeTo}.tmp`, writeTo)
  })
}
const mod = new Module(file)
mod.filename = file
script.runInThisContext()(mod.exports, createRequire(file), mod, file, dirname(file))
