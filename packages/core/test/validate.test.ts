import { test } from 'node:test'
import assert from 'node:assert/strict'
import nacl from 'tweetnacl'
import { Membership } from '../src/membership.js'
import { validateSealed } from '../src/validate.js'
import { encodeRecord } from '../src/record.js'
import { MESH_KEY, OTHER_MESH_KEY, T0, nonce, recordOf, sealRecord, settings, testNode, ula } from './fixtures.js'

const self = testNode('self')
function table (): Membership { return new Membership({ selfId: self.signer.nodeId, settings, ula }) }

function accept (t: Membership, sealed: Uint8Array, now = T0): void {
  const v = validateSealed(MESH_KEY, sealed, t, now)
  assert.equal(v.verdict, 'accept', JSON.stringify(v))
  if (v.verdict === 'accept') t.accept(v.record, sealed, now, 'gossip')
}

function rejectReason (t: Membership, sealed: Uint8Array, now = T0): string {
  const v = validateSealed(MESH_KEY, sealed, t, now)
  assert.equal(v.verdict, 'reject', JSON.stringify(v))
  return v.verdict === 'reject' ? v.reason : ''
}

test('a good record is accepted', () => {
  const a = testNode('a')
  accept(table(), sealRecord(a, recordOf(a)))
})

test('wrong mesh key → decrypt', () => {
  const a = testNode('a')
  assert.equal(rejectReason(table(), sealRecord(a, recordOf(a), OTHER_MESH_KEY)), 'decrypt')
})

test('bad signature → signature', () => {
  const a = testNode('a')
  const b = testNode('b')
  const inner = b.signer.sign(encodeRecord(recordOf(a)))
  inner.set(Buffer.from(a.signer.nodeId, 'base64url'), 1)
  const n = nonce()
  const sealed = new Uint8Array([...n, ...nacl.secretbox(inner, n, MESH_KEY)])
  assert.equal(rejectReason(table(), sealed), 'signature')
})

test('a record about another node, signed by a member → node-id-mismatch', () => {
  const a = testNode('a')
  const mallory = testNode('mallory')
  assert.equal(rejectReason(table(), sealRecord(mallory, recordOf(a))), 'node-id-mismatch')
})

test('older seq → replay; same seq → ignored duplicate', () => {
  const t = table()
  const a = testNode('a')
  accept(t, sealRecord(a, recordOf(a, { seq: 5 })))
  assert.equal(rejectReason(t, sealRecord(a, recordOf(a, { seq: 4 }))), 'replay')
  const dup = validateSealed(MESH_KEY, sealRecord(a, recordOf(a, { seq: 5 })), t, T0)
  assert.equal(dup.verdict, 'ignore')
  accept(t, sealRecord(a, recordOf(a, { seq: 6 })))
})

test('oversized → oversize', () => {
  const a = testNode('a')
  const big = recordOf(a, {
    tags: Array.from({ length: 32 }, (_, i) => `t${i}-${'x'.repeat(60)}`),
    routes: Array.from({ length: 64 }, (_, i) => `2001:db8:${i.toString(16)}:ffff:ffff:ffff:ffff:0/112`)
  })
  assert.equal(rejectReason(table(), sealRecord(a, big)), 'oversize')
})

test('malformed JSON → malformed; wrong shape → schema', () => {
  const a = testNode('a')
  const { seal } = awaitSeal()
  assert.equal(rejectReason(table(), seal(a, new TextEncoder().encode('{not json'))), 'malformed')
  assert.equal(rejectReason(table(), seal(a, new TextEncoder().encode('{"v":1}'))), 'schema')
  const r = { ...recordOf(a), ipv4: 'nope' }
  assert.equal(rejectReason(table(), sealRecord(a, r)), 'schema')
  const extra = { ...recordOf(a), evil: true }
  assert.equal(rejectReason(table(), sealRecord(a, extra as never)), 'schema')
})

test('clock skew beyond the limit → clock-skew', () => {
  const a = testNode('a')
  assert.equal(rejectReason(table(), sealRecord(a, recordOf(a, { issuedAt: T0 + settings.maxClockSkewMs + 1 }))), 'clock-skew')
})

test('IPs outside the mesh ranges → ip-outside-mesh', () => {
  const a = testNode('a')
  assert.equal(rejectReason(table(), sealRecord(a, recordOf(a, { ipv4: '192.0.2.1' }))), 'ip-outside-mesh')
  assert.equal(rejectReason(table(), sealRecord(a, recordOf(a, { ipv4: '100.96.0.0' }))), 'ip-outside-mesh')
  assert.equal(rejectReason(table(), sealRecord(a, recordOf(a, { ipv6: 'fd00::1' }))), 'ip-outside-mesh')
})

test('claiming a held IP → ip-conflict, whatever ipSince and nodeId say', () => {
  const t = table()
  const a = testNode('a')
  const b = testNode('b')
  accept(t, sealRecord(a, recordOf(a)))
  const stolen = recordOf(b, { ipv4: recordOf(a).ipv4, ipSince: T0 + 1 })
  assert.equal(rejectReason(t, sealRecord(b, stolen)), 'ip-conflict')
  const stolen6 = recordOf(b, { ipv6: recordOf(a).ipv6, ipSince: T0 + 1 })
  assert.equal(rejectReason(t, sealRecord(b, stolen6)), 'ip-conflict')
  const earlier = recordOf(b, { ipv4: recordOf(a).ipv4, ipv6: recordOf(a).ipv6, ipSince: 0 })
  assert.equal(rejectReason(t, sealRecord(b, earlier)), 'ip-conflict', 'an older ipSince wins nothing')
})

test('claiming a held WireGuard key → wg-key-conflict, whichever nodeId is lower', () => {
  for (const order of [1, -1]) {
    const t = table()
    const [first, second] = [testNode('a'), testNode('b')].sort((x, y) => (x.signer.nodeId < y.signer.nodeId ? -order : order)) as [ReturnType<typeof testNode>, ReturnType<typeof testNode>]
    accept(t, sealRecord(first, recordOf(first)))
    const copy = recordOf(second, { wgPublicKey: first.wgPublicKey })
    assert.equal(rejectReason(t, sealRecord(second, copy)), 'wg-key-conflict')
  }
})

test('after every rejection the table still serves good records', () => {
  const t = table()
  const a = testNode('a')
  rejectReason(t, new Uint8Array(100))
  rejectReason(t, sealRecord(a, recordOf(a), OTHER_MESH_KEY))
  accept(t, sealRecord(a, recordOf(a)))
  assert.equal(t.size, 1)
})

function awaitSeal (): { seal: (n: ReturnType<typeof testNode>, payload: Uint8Array) => Uint8Array } {
  return {
    seal: (n, payload) => {
      const inner = n.signer.sign(payload)
      const nn = nonce()
      return new Uint8Array([...nn, ...nacl.secretbox(inner, nn, MESH_KEY)])
    }
  }
}
