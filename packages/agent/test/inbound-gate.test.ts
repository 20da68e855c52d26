import { test } from 'node:test'
import assert from 'node:assert/strict'
import { multiaddr } from '@multiformats/multiaddr'
import { InboundGate, addressKey } from '../src/transport/inbound-gate.js'

function conn (addr: string): { remoteAddr: ReturnType<typeof multiaddr>, addEventListener: (t: 'close', fn: () => void) => void, close: () => void } {
  const fns: Array<() => void> = []
  return { remoteAddr: multiaddr(addr), addEventListener: (_t, fn) => { fns.push(fn) }, close: () => { for (const f of fns) f() } }
}

test('addressKey: IPv4 per address, IPv6 per /64, mapped IPv4 as IPv4', () => {
  assert.equal(addressKey(multiaddr('/ip4/192.0.2.7/tcp/1')), '4 192.0.2.7')
  assert.equal(addressKey(multiaddr('/ip6/2001:db8:1:2::5/tcp/1')), addressKey(multiaddr('/ip6/2001:db8:1:2:ffff::9/tcp/1')))
  assert.notEqual(addressKey(multiaddr('/ip6/2001:db8:1:2::5/tcp/1')), addressKey(multiaddr('/ip6/2001:db8:1:3::5/tcp/1')))
  assert.equal(addressKey(multiaddr('/ip6/::ffff:192.0.2.7/tcp/1')), '4 192.0.2.7')
})

test('InboundGate: at most N pending per address until authenticated or closed; other addresses unaffected', () => {
  const gate = new InboundGate({ maxPendingPerAddress: 2, releaseAfterMs: 60_000 })
  try {
    const a1 = conn('/ip4/192.0.2.7/tcp/1')
    const a2 = conn('/ip4/192.0.2.7/tcp/2')
    assert.equal(gate.denyInboundConnection(a1), false)
    assert.equal(gate.denyInboundConnection(a2), false)
    assert.equal(gate.denyInboundConnection(conn('/ip4/192.0.2.7/tcp/3')), true, 'a third pending from one address')
    assert.equal(gate.denyInboundConnection(conn('/ip4/192.0.2.8/tcp/3')), false, 'another address still gets in')
    assert.equal(gate.refused, 1)
    gate.denyInboundEncryptedConnection(undefined, a1) // authenticated: no longer pending
    a1.close() // (and a later close does not count twice)
    assert.equal(gate.pendingOf('4 192.0.2.7'), 1)
    a2.close()
    assert.equal(gate.pendingOf('4 192.0.2.7'), 0)
    assert.equal(gate.denyInboundConnection(conn('/ip4/192.0.2.7/tcp/4')), false)
  } finally { gate.clear() }
})

test('InboundGate: a pending entry is released after releaseAfterMs even without a close event', async () => {
  const gate = new InboundGate({ maxPendingPerAddress: 1, releaseAfterMs: 50 })
  try {
    assert.equal(gate.denyInboundConnection(conn('/ip4/192.0.2.7/tcp/1')), false)
    assert.equal(gate.denyInboundConnection(conn('/ip4/192.0.2.7/tcp/2')), true)
    await new Promise(resolve => setTimeout(resolve, 80))
    assert.equal(gate.denyInboundConnection(conn('/ip4/192.0.2.7/tcp/3')), false)
  } finally { gate.clear() }
})
