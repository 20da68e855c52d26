import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, chmodSync, readdirSync, chownSync, mkdirSync, symlinkSync, lstatSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { meshSettings, ulaPrefix, cidrContainsText } from '@wgmesh/core'
import { StateStore, generateWireGuardPrivateKey, parseMeshKey, writeFileAtomic } from '../src/state-store.js'
import { wgPublicKeyFromPrivate } from '@wgmesh/core'
import { restoreAddressing } from '../src/persisted.js'
import type { Logger } from '../src/logger.js'

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

test('corrupt key files give a clear error naming the file and are never overwritten; a corrupt state.json is set aside', () => {
  const { dir, store } = fresh()
  try {
    store.ensureDir()
    writeFileSync(join(dir, 'node.key'), 'not a key\n', { mode: 0o600 })
    assert.throws(() => store.nodeSeed(), (e: Error) => e.name === 'StateError' && e.message.includes('node.key') && e.message.includes('corrupt'))
    assert.equal(readFileSync(join(dir, 'node.key'), 'utf8'), 'not a key\n', 'identity file kept for the operator')
    const warned: string[] = []
    const quiet = new StateStore(dir, { ...silent, warn (msg: string) { warned.push(msg) } })
    writeFileSync(join(dir, 'state.json'), '{"version":1,', { mode: 0o600 })
    assert.deepEqual(quiet.load(), { version: 1, seq: 0, known: [] })
    assert.match(quiet.setAside[0]?.why ?? '', /not valid JSON/)
    assert.match(warned[0] ?? '', /state\.json is unusable \(not valid JSON\): moved to .*state\.json\.bad-/)
    writeFileSync(join(dir, 'state.json'), '{"version":7}', { mode: 0o600 })
    assert.throws(() => store.load(), /unknown layout \(version 7/) // a newer wgmesh's state is not destroyed
  } finally { rmSync(join(dir, '..'), { recursive: true, force: true }) }
})

const silent: Logger = { debug () {}, info () {}, warn () {}, error () {} }

test('L1: a state directory owned by another user, or writable by group or others, is refused with what to run', () => {
  const { dir, store } = fresh()
  try {
    mkdirSync(dir, { mode: 0o700 })
    if (process.getuid?.() === 0) {
      chownSync(dir, 65534, 65534) // the attack: nobody owns the directory root's agent would trust
      assert.throws(() => store.ensureDir(), (e: Error) => e.name === 'StateError' && e.message.includes('owned by uid 65534') &&
        e.message.includes(`chown root: ${dir} && chmod 700 ${dir}`))
      assert.equal(statSync(dir).uid, 65534, 'nothing changed')
      chownSync(dir, 0, 0)
    }
    chmodSync(dir, 0o777) // the attack: anyone could have planted keys or links
    assert.throws(() => store.ensureDir(), (e: Error) => e.name === 'StateError' && e.message.includes('writable by others') && e.message.includes('chmod 700'))
    chmodSync(dir, 0o770)
    assert.throws(() => store.ensureDir(), /writable by its group/)
    chmodSync(dir, 0o755) // readable only: tightened
    store.ensureDir()
    assert.equal(statSync(dir).mode & 0o777, 0o700)
  } finally { rmSync(join(dir, '..'), { recursive: true, force: true }) }
})

test('L1: temp files are created exclusively and no write or chmod goes through a planted symbolic link', () => {
  const { dir, store } = fresh()
  const victim = join(dir, '..', 'victim')
  try {
    store.ensureDir()
    writeFileSync(victim, 'precious\n', { mode: 0o644 })
    // the attack on the old predictable temp name (state.json.tmp-<pid>): a link to the victim
    symlinkSync(victim, join(dir, `state.json.tmp-${process.pid}`))
    store.save({ version: 1, seq: 7, known: [] })
    assert.equal(readFileSync(victim, 'utf8'), 'precious\n', 'the victim was written through the link')
    assert.equal(store.load().seq, 7)
    // a link planted at the target itself is replaced by the rename, not followed
    rmSync(join(dir, 'state.json'))
    symlinkSync(victim, join(dir, 'state.json'))
    store.save({ version: 1, seq: 8, known: [] })
    assert.ok(lstatSync(join(dir, 'state.json')).isFile())
    assert.equal(readFileSync(victim, 'utf8'), 'precious\n')
    writeFileAtomic(join(dir, 'other'), 'data', 0o640)
    assert.equal(statSync(join(dir, 'other')).mode & 0o777, 0o640)
    // reading a key never follows a link (nor chmods its target)
    writeFileSync(victim, Buffer.alloc(32, 1).toString('base64') + '\n', { mode: 0o644 })
    symlinkSync(victim, join(dir, 'node.key'))
    assert.throws(() => store.nodeSeed(), (e: Error) => e.name === 'StateError' && e.message.includes('symbolic link'))
    assert.equal(statSync(victim).mode & 0o777, 0o644, 'the victim was chmod\'ed through the link')
    assert.deepEqual(readdirSync(dir).filter(f => f.includes('.tmp-')), [`state.json.tmp-${process.pid}`], 'no temp files left behind (but the planted link)')
  } finally { rmSync(join(dir, '..'), { recursive: true, force: true }) }
})

test('L2: state.json is checked like a record; an address outside the mesh (8.8.8.8) or a wrong type sets it aside, the keys stay', () => {
  const { dir, store } = fresh()
  try {
    store.ensureDir()
    const seed = store.nodeSeed()
    const wg = store.wgPrivateKey()
    const meshKey = new Uint8Array(32).fill(9)
    store.saveMeshKey(meshKey)
    const { cidr4 } = meshSettings({})
    const ula = ulaPrefix(meshKey)
    const good = { version: 1, seq: 5, ipv4: '100.96.3.4', ipv6: 'fd12:3456:789a::1', ipSalt: 0, ipSince: 1000, cidr4: '100.96.0.0/16', known: [] }
    const bad: Array<[string, object]> = [
      ['ipv4 is not an address of 100.96.0.0/16', { ...good, ipv4: '8.8.8.8' }],
      ['ipv4 is not an address', { ...good, ipv4: '100.96.255.255' }],
      ['ipv6 is not a ULA address', { ...good, ipv6: '2001:4860::8888' }],
      ['seq is not', { ...good, seq: -1 }],
      ['seq is not', { ...good, seq: '5' }],
      ['ipSalt out of range', { ...good, ipSalt: 1e9 }],
      ['unknown field', { ...good, extra: 1 }],
      ['go together', { version: 1, seq: 1, ipv4: '100.96.3.4', known: [] }],
      ['left is not a boolean', { ...good, left: 'yes' }],
      ['known is not a list', { ...good, known: {} }],
      ['not an object', [1]]
    ]
    let n = 0
    for (const [why, body] of bad) {
      writeFileSync(join(dir, 'state.json'), JSON.stringify(body), { mode: 0o600 })
      const s = new StateStore(dir, silent)
      assert.deepEqual(s.load(), { version: 1, seq: 0, known: [] }, why)
      assert.match(s.setAside[0]?.why ?? '', new RegExp(why.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')), JSON.stringify(body))
      n++
      assert.equal(readdirSync(dir).filter(f => f.startsWith('state.json.bad-')).length >= 1, true)
    }
    assert.equal(n, bad.length)
    writeFileSync(join(dir, 'state.json'), JSON.stringify(good), { mode: 0o600 })
    assert.equal(store.load().ipv4, '100.96.3.4')
    // the keys are untouched by all of it
    assert.deepEqual(store.nodeSeed(), seed)
    assert.equal(store.wgPrivateKey(), wg)
    assert.deepEqual(store.meshKey(), meshKey)
    // restoreAddressing never takes an address outside the mesh's ranges, whatever the state says
    const pub = 'x'.repeat(43) + '='
    const a = restoreAddressing({ version: 1, seq: 0, known: [], ipv4: '8.8.8.8', ipv6: 'fd00::1', ipSalt: 0, ipSince: 1, cidr4: '100.96.0.0/16' }, cidr4, ula, pub, 5)
    assert.ok(cidrContainsText(cidr4, a.ipv4) && a.ipv4 !== '8.8.8.8')
    assert.ok(cidrContainsText(ula, a.ipv6))
    assert.equal(a.ipSince, 5)
    const ok = restoreAddressing({ version: 1, seq: 0, known: [], ipv4: '100.96.3.4', ipv6: a.ipv6, ipSalt: 3, ipSince: 1, cidr4: '100.96.0.0/16' }, cidr4, ula, pub, 5)
    assert.deepEqual(ok, { ipv4: '100.96.3.4', ipv6: a.ipv6, ipSalt: 3, ipSince: 1 })
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

test('WireGuard private keys are 32 random bytes, clamped as wg genkey clamps them', () => {
  const seen = new Set<string>()
  for (let i = 0; i < 50; i++) {
    const k = Buffer.from(generateWireGuardPrivateKey(), 'base64')
    assert.equal(k.length, 32)
    assert.equal(k.readUInt8(0) & 7, 0)
    assert.equal(k.readUInt8(31) & 0xc0, 0x40)
    assert.match(wgPublicKeyFromPrivate(k.toString('base64')), /^[A-Za-z0-9+/]{43}=$/)
    seen.add(k.toString('hex'))
  }
  assert.equal(seen.size, 50)
})
