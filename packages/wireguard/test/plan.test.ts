import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { DesiredPeer, DesiredWireGuard } from '@wgmesh/core'
import { planWireGuard, type CurrentState, type Step } from '../src/plan.js'

/** A distinct valid-looking base64 key per number; sorts by n for n < 65536. */
function key (n: number): string {
  const b = Buffer.alloc(32, 7)
  b.writeUInt16BE(n, 0)
  return b.toString('base64')
}
const A = key(1)
const B = key(2)
const C = key(3)
const D = key(4)

function peer (pk: string, over: Partial<DesiredPeer> = {}): DesiredPeer {
  return { publicKey: pk, endpoint: '192.0.2.1:51820', allowedIps: ['100.96.0.1/32'], persistentKeepalive: 25, ...over }
}

function desired (over: Partial<DesiredWireGuard> = {}): DesiredWireGuard {
  return { interface: 'wg0', privateKeyFile: '/k', listenPort: 51820, addresses: ['100.96.3.4/16', 'fdab:cdef:1234::5/48'], mtu: 1420, peers: [], ...over }
}

/** The observed state that exactly matches `d` (as if applied and nothing moved). */
function stateOf (d: DesiredWireGuard): CurrentState {
  return {
    dump: {
      interface: { privateKey: 'PRIV', publicKey: 'PUB', listenPort: d.listenPort },
      peers: d.peers.map(p => ({
        publicKey: p.publicKey,
        ...(p.endpoint === undefined ? {} : { endpoint: p.endpoint }),
        allowedIps: [...p.allowedIps],
        latestHandshake: 1_800_000_000, // tunnels that worked (see below for one that never did)
        transferRx: 0,
        transferTx: 0,
        ...(p.persistentKeepalive === undefined || p.persistentKeepalive === 0 ? {} : { persistentKeepalive: p.persistentKeepalive })
      }))
    },
    addresses: [...d.addresses],
    link: { name: d.interface, flags: ['POINTOPOINT', 'NOARP', 'UP', 'LOWER_UP'], mtu: d.mtu, up: true, operState: 'UNKNOWN' }
  }
}

const lines = (steps: Step[]): string[] => steps.map(s => s.join(' '))

describe('planWireGuard', () => {
  it('new interface: key and port, peers in key order, addresses, mtu, up', () => {
    const d = desired({ peers: [peer(B, { endpoint: undefined, persistentKeepalive: 0, allowedIps: ['100.96.0.2/32'] }), peer(A)] })
    assert.deepEqual(lines(planWireGuard(undefined, d)), [
      'wg set wg0 listen-port 51820 private-key /k',
      `wg set wg0 peer ${A} endpoint 192.0.2.1:51820 persistent-keepalive 25 allowed-ips 100.96.0.1/32`,
      `wg set wg0 peer ${B} allowed-ips 100.96.0.2/32`,
      'ip address add 100.96.3.4/16 dev wg0',
      'ip address add fdab:cdef:1234::5/48 dev wg0',
      'ip link set dev wg0 mtu 1420 up'
    ])
  })

  it('identical state plans nothing, also without lastApplied', () => {
    const d = desired({ peers: [peer(A), peer(B, { endpoint: undefined })] })
    assert.deepEqual(planWireGuard(stateOf(d), d), [])
    assert.deepEqual(planWireGuard(stateOf(d), d, d), [])
  })

  it('different spellings of the same addresses and allowed-ips plan nothing', () => {
    const d = desired({ addresses: ['fdab:cdef:1234:0:0:0:0:5/48'], peers: [peer(A, { allowedIps: ['fd12::1/128', '100.96.0.1/32'] })] })
    const cur = stateOf(d)
    cur.addresses = ['fdab:cdef:1234::5/48']
    cur.dump.peers[0]!.allowedIps = ['100.96.0.1/32', 'FD12:0::1/128']
    assert.deepEqual(planWireGuard(cur, d, d), [])
  })

  it('adds a new peer with endpoint, keepalive and allowed-ips', () => {
    const before = desired({ peers: [peer(A)] })
    const after = desired({ peers: [peer(A), peer(C, { endpoint: '[2001:db8::9]:4500', allowedIps: ['100.96.0.3/32', 'fd12::3/128'] })] })
    assert.deepEqual(lines(planWireGuard(stateOf(before), after, before)), [
      `wg set wg0 peer ${C} endpoint [2001:db8::9]:4500 persistent-keepalive 25 allowed-ips 100.96.0.3/32,fd12::3/128`
    ])
  })

  it('changed allowed-ips: one step with the full new list', () => {
    const before = desired({ peers: [peer(A)] })
    const after = desired({ peers: [peer(A, { allowedIps: ['100.96.0.1/32', '10.10.0.0/16'] })] })
    assert.deepEqual(lines(planWireGuard(stateOf(before), after, before)), [
      `wg set wg0 peer ${A} allowed-ips 100.96.0.1/32,10.10.0.0/16`
    ])
  })

  it('changed desired endpoint is pushed', () => {
    const before = desired({ peers: [peer(A)] })
    const after = desired({ peers: [peer(A, { endpoint: '198.51.100.4:51820' })] })
    assert.deepEqual(lines(planWireGuard(stateOf(before), after, before)), [`wg set wg0 peer ${A} endpoint 198.51.100.4:51820`])
  })

  it('a peer that never completed a handshake is re-created on a new endpoint (WireGuard initiates at once, not after 5 s)', () => {
    const before = desired({ peers: [peer(A)] })
    const cur = stateOf(before)
    cur.dump.peers[0]!.latestHandshake = 0
    const after = desired({ peers: [peer(A, { endpoint: '198.51.100.4:51820' })] })
    assert.deepEqual(lines(planWireGuard(cur, after, before)), [
      `wg set wg0 peer ${A} remove`,
      `wg set wg0 peer ${A} endpoint 198.51.100.4:51820 persistent-keepalive 25 allowed-ips 100.96.0.1/32`
    ])
    // other changes to such a peer stay one in-place step
    const ka = desired({ peers: [peer(A, { persistentKeepalive: 5 })] })
    assert.deepEqual(lines(planWireGuard(cur, ka, before)), [`wg set wg0 peer ${A} persistent-keepalive 5`])
  })

  it('roaming is not fought: WireGuard moved the endpoint, our desired endpoint did not change', () => {
    const d = desired({ peers: [peer(A)] })
    const cur = stateOf(d)
    cur.dump.peers[0]!.endpoint = '203.0.113.50:61000'
    assert.deepEqual(planWireGuard(cur, d, d), [])
    // No endpoint in desired: never touch the endpoint.
    const noEp = desired({ peers: [peer(A, { endpoint: undefined })] })
    assert.deepEqual(planWireGuard(cur, noEp, noEp), [])
  })

  it('a pinned endpoint is set again after WireGuard roamed away (punching after a relay)', () => {
    const d = desired({ peers: [peer(A, { pinEndpoint: true })] })
    const cur = stateOf(d)
    cur.dump.peers[0]!.endpoint = '198.18.1.2:40001'
    assert.deepEqual(lines(planWireGuard(cur, d, d)), [`wg set wg0 peer ${A} endpoint 192.0.2.1:51820`])
    assert.deepEqual(planWireGuard(stateOf(d), d, d), [], 'nothing to do while WireGuard is where we want it')
  })

  it('endpoint is set when WireGuard has none, or when nothing was applied yet', () => {
    const d = desired({ peers: [peer(A)] })
    const none = stateOf(d)
    delete none.dump.peers[0]!.endpoint
    assert.deepEqual(lines(planWireGuard(none, d, d)), [`wg set wg0 peer ${A} endpoint 192.0.2.1:51820`])
    const roamed = stateOf(d)
    roamed.dump.peers[0]!.endpoint = '203.0.113.50:61000'
    assert.deepEqual(lines(planWireGuard(roamed, d)), [`wg set wg0 peer ${A} endpoint 192.0.2.1:51820`])
  })

  it('keepalive changes: on → off and off → on', () => {
    const on = desired({ peers: [peer(A, { persistentKeepalive: 25 })] })
    const off = desired({ peers: [peer(A, { persistentKeepalive: 0 })] })
    assert.deepEqual(lines(planWireGuard(stateOf(on), off, on)), [`wg set wg0 peer ${A} persistent-keepalive off`])
    assert.deepEqual(lines(planWireGuard(stateOf(off), on, off)), [`wg set wg0 peer ${A} persistent-keepalive 25`])
    const undef = desired({ peers: [peer(A, { persistentKeepalive: undefined })] })
    assert.deepEqual(planWireGuard(stateOf(off), undef, off), [])
  })

  it('several changes to one peer are one step', () => {
    const before = desired({ peers: [peer(A)] })
    const after = desired({ peers: [peer(A, { endpoint: '198.51.100.4:1', persistentKeepalive: 10, allowedIps: ['100.96.0.9/32'] })] })
    assert.deepEqual(lines(planWireGuard(stateOf(before), after, before)), [
      `wg set wg0 peer ${A} endpoint 198.51.100.4:1 persistent-keepalive 10 allowed-ips 100.96.0.9/32`
    ])
  })

  it('removes undesired peers after all adds and updates, each group sorted by key', () => {
    const before = desired({ peers: [peer(C), peer(A), peer(B)] })
    const after = desired({ peers: [peer(D), peer(B, { allowedIps: ['100.96.0.1/32', '100.96.0.2/32'] })] })
    assert.deepEqual(lines(planWireGuard(stateOf(before), after, before)), [
      `wg set wg0 peer ${B} allowed-ips 100.96.0.1/32,100.96.0.2/32`,
      `wg set wg0 peer ${D} endpoint 192.0.2.1:51820 persistent-keepalive 25 allowed-ips 100.96.0.1/32`,
      `wg set wg0 peer ${A} remove`,
      `wg set wg0 peer ${C} remove`
    ])
  })

  it('address swap: add the new one before deleting the old one (IPv6, or IPv4 in another subnet)', () => {
    const before = desired({ addresses: ['10.1.0.1/24', 'fdab:cdef:1234::5/48'] })
    const after = desired({ addresses: ['100.96.9.9/16', 'fdab:cdef:1234::9/48'] })
    assert.deepEqual(lines(planWireGuard(stateOf(before), after, before)), [
      'ip address add 100.96.9.9/16 dev wg0',
      'ip address add fdab:cdef:1234::9/48 dev wg0',
      'ip address del 10.1.0.1/24 dev wg0',
      'ip address del fdab:cdef:1234::5/48 dev wg0'
    ])
  })

  it('IPv4 swap within one subnet deletes first: deleting a primary would take the new secondary along', () => {
    const before = desired({ addresses: ['100.96.3.4/16', 'fdab:cdef:1234::5/48'] })
    const after = desired({ addresses: ['100.96.9.9/16', 'fdab:cdef:1234::5/48'] })
    assert.deepEqual(lines(planWireGuard(stateOf(before), after, before)), [
      'ip address del 100.96.3.4/16 dev wg0',
      'ip address add 100.96.9.9/16 dev wg0'
    ])
    // A kept address of that subnet is re-asserted idempotently after the deletion.
    const two = desired({ addresses: ['100.96.3.4/16', '100.96.5.5/16'] })
    const one = desired({ addresses: ['100.96.5.5/16'] })
    assert.deepEqual(lines(planWireGuard(stateOf(two), one, two)), [
      'ip address del 100.96.3.4/16 dev wg0',
      'ip address replace 100.96.5.5/16 dev wg0'
    ])
  })

  it('mtu change and a down link', () => {
    const d = desired()
    const cur = stateOf(d)
    cur.link.mtu = 1500
    cur.link.up = false
    assert.deepEqual(lines(planWireGuard(cur, d, d)), ['ip link set dev wg0 mtu 1420 up'])
  })

  it('private key and port: set when missing, wrong public key, port changed or key file changed', () => {
    const d = desired()
    const keyStep = ['wg set wg0 listen-port 51820 private-key /k']
    const noKey = stateOf(d)
    delete noKey.dump.interface.privateKey
    assert.deepEqual(lines(planWireGuard(noKey, d, d)), keyStep)
    assert.deepEqual(lines(planWireGuard(stateOf(d), d, d, { expectedPublicKey: 'OTHER' })), keyStep)
    assert.deepEqual(planWireGuard(stateOf(d), d, d, { expectedPublicKey: 'PUB' }), [])
    assert.deepEqual(lines(planWireGuard(stateOf(desired({ listenPort: 4000 })), d, d)), keyStep)
    assert.deepEqual(lines(planWireGuard(stateOf(d), d, desired({ privateKeyFile: '/old' }))), keyStep)
  })

  it('manageInterface false plans only peers and addresses', () => {
    const d = desired({ peers: [peer(A)] })
    assert.deepEqual(lines(planWireGuard(undefined, d, undefined, { manageInterface: false })), [
      `wg set wg0 peer ${A} endpoint 192.0.2.1:51820 persistent-keepalive 25 allowed-ips 100.96.0.1/32`,
      'ip address add 100.96.3.4/16 dev wg0',
      'ip address add fdab:cdef:1234::5/48 dev wg0'
    ])
    const cur = stateOf(d)
    cur.link.up = false
    cur.link.mtu = 9000
    cur.dump.interface.listenPort = 1
    assert.deepEqual(planWireGuard(cur, d, d, { manageInterface: false, expectedPublicKey: 'X' }), [])
  })

  it('1000 peers: unchanged → 0 steps; one changed → exactly 1 step', () => {
    const peers = Array.from({ length: 1000 }, (_, i) => peer(key(i), { allowedIps: [`100.96.${i >> 8}.${i & 255}/32`] }))
    const d = desired({ peers })
    const cur = stateOf(d)
    cur.dump.peers.reverse() // kernel order is not key order
    assert.deepEqual(planWireGuard(cur, d, d), [])
    const changed = desired({ peers: peers.map((p, i) => i === 617 ? { ...p, allowedIps: [...p.allowedIps, '10.0.0.0/8'] } : p) })
    assert.deepEqual(lines(planWireGuard(cur, changed, d)), [`wg set wg0 peer ${key(617)} allowed-ips 100.96.2.105/32,10.0.0.0/8`])
  })

  it('is deterministic whatever the input order', () => {
    const d1 = desired({ peers: [peer(D), peer(A), peer(C), peer(B)] })
    const d2 = desired({ peers: [peer(B), peer(C), peer(A), peer(D)] })
    const p1 = lines(planWireGuard(undefined, d1))
    assert.deepEqual(p1, lines(planWireGuard(undefined, d2)))
    assert.deepEqual(p1.slice(1, 5).map(l => l.split(' ')[4]), [A, B, C, D])
  })
})
