import { test } from 'node:test'
import { createHmac } from 'node:crypto'
import assert from 'node:assert/strict'
import { admitRelaySession, decodeRelayCtl, encodeRelayCtl, isWireGuardDatagram, MAX_RELAY_CTL_BYTES, pairKey } from '../src/relay.js'
import { probeKey } from '../src/probe-wire.js'

const key = probeKey(new Uint8Array(32).fill(7))
const A = 'A'.repeat(43)
const B = 'B'.repeat(43)

test('relay control messages round-trip and fit the bound', () => {
  for (const m of [
    { t: 'alloc', from: A, peer: B, id: 0xffffffff },
    { t: 'ok', peer: B, port: 65535, id: 1 },
    { t: 'no', peer: B, id: 2, why: 'relay full' }
  ] as const) {
    const b = encodeRelayCtl(key, m)
    assert.ok(b.length <= MAX_RELAY_CTL_BYTES)
    assert.deepEqual(decodeRelayCtl(key, b), m)
  }
})

test('forged, tampered, oversized or malformed relay control messages are refused', () => {
  const good = encodeRelayCtl(key, { t: 'alloc', from: A, peer: B, id: 5 })
  assert.equal(decodeRelayCtl(probeKey(new Uint8Array(32).fill(8)), good), undefined, 'another mesh key')
  const flipped = Uint8Array.from(good)
  flipped[10] = flipped[10]! ^ 1
  assert.equal(decodeRelayCtl(key, flipped), undefined, 'one bit changed')
  assert.equal(decodeRelayCtl(key, new Uint8Array(MAX_RELAY_CTL_BYTES + 1).fill(0x52)), undefined)
  assert.equal(decodeRelayCtl(key, new Uint8Array(0)), undefined)
  // well-authenticated but not a valid message: each must be refused
  const forge = (o: unknown): Uint8Array => {
    const body = Buffer.concat([Buffer.from([0x52]), Buffer.from(JSON.stringify(o))])
    return Buffer.concat([body, createHmac('sha256', key).update('wgmesh-relay-v1\0').update(body).digest().subarray(0, 16)])
  }
  assert.deepEqual(decodeRelayCtl(key, forge({ t: 'alloc', from: A, peer: B, id: 5 })), { t: 'alloc', from: A, peer: B, id: 5 }, 'the forge helper itself is right')
  for (const bad of [
    { t: 'alloc', from: A, peer: A, id: 1 }, // a pair with itself
    { t: 'alloc', from: 'x', peer: B, id: 1 },
    { t: 'alloc', from: A, peer: B, id: -1 },
    { t: 'alloc', from: A, peer: B, id: 1, extra: 1 },
    { t: 'ok', peer: B, port: 0, id: 1 },
    { t: 'ok', peer: B, port: 70000, id: 1 },
    { t: 'no', peer: B, id: 1, why: 'x'.repeat(65) },
    { t: 'what', peer: B, id: 1 },
    [1, 2]
  ]) assert.equal(decodeRelayCtl(key, forge(bad)), undefined, JSON.stringify(bad))
})

test('only WireGuard-shaped datagrams are relayed', () => {
  const msg = (type: number, len: number): Uint8Array => { const b = new Uint8Array(len); b[0] = type; return b }
  assert.ok(isWireGuardDatagram(msg(1, 148)))
  assert.ok(isWireGuardDatagram(msg(2, 92)))
  assert.ok(isWireGuardDatagram(msg(3, 64)))
  assert.ok(isWireGuardDatagram(msg(4, 32)), 'a keepalive')
  assert.ok(isWireGuardDatagram(msg(4, 32 + 1424)))
  assert.ok(isWireGuardDatagram(msg(4, 32 + 1420)), 'an MTU-sized packet is padded only up to the MTU (1420)')
  assert.ok(!isWireGuardDatagram(msg(1, 149)))
  assert.ok(!isWireGuardDatagram(msg(4, 31)))
  assert.ok(!isWireGuardDatagram(msg(5, 64)))
  const reserved = msg(4, 48)
  reserved[2] = 1
  assert.ok(!isWireGuardDatagram(reserved))
  assert.ok(!isWireGuardDatagram(new TextEncoder().encode('GET / HTTP/1.1\r\nHost: x\r\n\r\n')))
})

test('a relay admits pairs up to its limits; an open pair is always served', () => {
  const limits = { maxSessions: 3, maxPerMember: 2, idleMs: 1000 }
  const open = [pairKey('a', 'b'), pairKey('a', 'c')]
  assert.equal(admitRelaySession(open, 'b', 'a', limits), undefined, 'existing pair')
  assert.equal(admitRelaySession(open, 'a', 'd', limits), 'too many pairs for one member')
  assert.equal(admitRelaySession(open, 'd', 'e', limits), undefined)
  assert.equal(admitRelaySession([...open, pairKey('d', 'e')], 'f', 'g', limits), 'relay full')
})
