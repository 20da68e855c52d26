import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, chmodSync, readdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { StateStore, parseMeshKey } from '../src/state-store.js'

function fresh (): { dir: string, store: StateStore } {
  const root = mkdtempSync(join(tmpdir(), 'wgmesh-state-'))
  const dir = join(root, 'state')
  return { dir, store: new StateStore(dir) }
}

test('the state dir is 0700 and every secret file 0600; keys are stable across loads', () => {
  const { dir, store } = fresh()
  try {
    store.ensureDir()
    const seed = store.nodeSeed()
    const wg = store.wgPrivateKey()
    store.saveMeshKey(new Uint8Array(32).fill(3))
    store.save({ version: 1, seq: 42, known: [] })
    assert.equal(statSync(dir).mode & 0o777, 0o700)
    for (const f of ['node.key', 'wg.key', 'mesh.key', 'state.json']) assert.equal(statSync(join(dir, f)).mode & 0o777, 0o600, f)
    const again = new StateStore(dir)
    assert.deepEqual(again.nodeSeed(), seed)
    assert.equal(again.wgPrivateKey(), wg)
    assert.deepEqual(again.meshKey(), new Uint8Array(32).fill(3))
    assert.equal(again.load().seq, 42)
    assert.deepEqual(readdirSync(dir).filter(f => f.includes('.tmp')), [], 'no temp files left by atomic writes')
  } finally { rmSync(join(dir, '..'), { recursive: true, force: true }) }
})

test('a loose directory or key file is tightened', () => {
  const { dir, store } = fresh()
  try {
    store.ensureDir()
    store.wgPrivateKey()
    chmodSync(dir, 0o755)
    chmodSync(join(dir, 'wg.key'), 0o644)
    store.ensureDir()
    store.wgPrivateKey()
    assert.equal(statSync(dir).mode & 0o777, 0o700)
    assert.equal(statSync(join(dir, 'wg.key')).mode & 0o777, 0o600)
  } finally { rmSync(join(dir, '..'), { recursive: true, force: true }) }
})

test('corrupt files give a clear error naming the file and are never overwritten', () => {
  const { dir, store } = fresh()
  try {
    store.ensureDir()
    writeFileSync(join(dir, 'node.key'), 'not a key\n', { mode: 0o600 })
    assert.throws(() => store.nodeSeed(), (e: Error) => e.name === 'StateError' && e.message.includes('node.key') && e.message.includes('corrupt'))
    assert.equal(readFileSync(join(dir, 'node.key'), 'utf8'), 'not a key\n', 'identity file kept for the operator')
    writeFileSync(join(dir, 'state.json'), '{"version":1,', { mode: 0o600 })
    assert.throws(() => store.load(), (e: Error) => e.name === 'StateError' && e.message.includes('state.json'))
    writeFileSync(join(dir, 'state.json'), '{"version":7}', { mode: 0o600 })
    assert.throws(() => store.load(), /unknown layout/)
  } finally { rmSync(join(dir, '..'), { recursive: true, force: true }) }
})

test('known members with a bad shape are dropped, the rest kept', () => {
  const { dir, store } = fresh()
  try {
    store.ensureDir()
    writeFileSync(join(dir, 'state.json'), JSON.stringify({ version: 1, seq: 1, known: [{ nodeId: 'a', name: 'a', gossipAddrs: ['/ip4/1.2.3.4/tcp/1'] }, { nodeId: 5 }, null] }))
    assert.deepEqual(store.load().known.map(k => k.nodeId), ['a'])
  } finally { rmSync(join(dir, '..'), { recursive: true, force: true }) }
})

test('mesh keys must be 32 bytes of base64', () => {
  assert.equal(parseMeshKey(Buffer.alloc(32, 1).toString('base64') + '\n', 'x').length, 32)
  assert.throws(() => parseMeshKey('short', 'WGMESH_MESH_KEY'), /WGMESH_MESH_KEY: a mesh key is 32 bytes/)
})
