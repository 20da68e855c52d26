/**
 * What a node advertises of its underlay (issue 11): gossip addresses of both families (IPv4,
 * then global IPv6, the overlay last), never a link-local or (unless listening on loopback) a
 * loopback one; WireGuard endpoint candidates from global IPv6 addresses too (never ULA,
 * link-local or the overlay's own ranges); and the path manager tries what this host can reach.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { NetworkInterfaceInfo } from 'node:os'
import { Membership, isValidGossipAddr, parseCidr, pathPolicy } from '@wgmesh/core'
import { orderGossipAddrs } from '../src/self-record.js'
import { endpointCandidates, localAddresses, underlayFamilies } from '../src/local-addresses.js'
import { PathManager } from '../src/path-manager.js'
import { T0, recordOf, sealRecord, settings, testNode, ula } from '../../core/test/fixtures.js'

const self = { ipv4: '100.96.1.2', ipv6: 'fd3c:1:2::9' }

test('gossip addresses: underlay IPv4, then IPv6, then the overlay; link-local and loopback left out', () => {
  const p = '/p2p/12D3KooWAbc'
  const all = [
    `/ip4/127.0.0.1/tcp/51821${p}`, `/ip4/100.96.1.2/tcp/51821${p}`, `/ip4/198.18.1.1/tcp/51821${p}`,
    `/ip6/::1/tcp/51821${p}`, `/ip6/fe80::1/tcp/51821${p}`, `/ip6/fd3c:1:2::9/tcp/51821${p}`, `/ip6/2001:db8:1::1/tcp/51821${p}`
  ]
  assert.deepEqual(orderGossipAddrs(all, false, self), [
    `/ip4/198.18.1.1/tcp/51821${p}`, `/ip6/2001:db8:1::1/tcp/51821${p}`, `/ip4/100.96.1.2/tcp/51821${p}`, `/ip6/fd3c:1:2::9/tcp/51821${p}`
  ])
  // an IPv6-only host: its global address first
  const v6only = [`/ip4/100.96.1.2/tcp/51821${p}`, `/ip6/fe80::1/tcp/51821${p}`, `/ip6/2001:db8:1::3/tcp/51821${p}`]
  assert.deepEqual(orderGossipAddrs(v6only, false, self), [`/ip6/2001:db8:1::3/tcp/51821${p}`, `/ip4/100.96.1.2/tcp/51821${p}`])
  // listening on loopback (tests): loopback is what there is
  assert.deepEqual(orderGossipAddrs([`/ip6/::1/tcp/4${p}`], true, self), [`/ip6/::1/tcp/4${p}`])
  // at most 8
  const many = Array.from({ length: 12 }, (_, i) => `/ip6/2001:db8::${i + 1}/tcp/1`)
  assert.equal(orderGossipAddrs(many, false, self).length, 8)
})

test('every address a node advertises passes record validation', () => {
  const nodeId = 'x'.repeat(43)
  for (const a of orderGossipAddrs(['/ip6/2001:db8:1::1/tcp/51821', '/ip6/fe80::2/tcp/51821', '/ip4/198.18.1.1/tcp/51821'], false, self)) {
    assert.ok(isValidGossipAddr(a, nodeId), a)
  }
})

function iface (address: string, cidr: string, extra: Partial<NetworkInterfaceInfo> = {}): NetworkInterfaceInfo {
  const v6 = address.includes(':')
  return { address, cidr, netmask: '', mac: '00:00:00:00:00:00', internal: false, ...(v6 ? { family: 'IPv6', scopeid: 0 } : { family: 'IPv4' }), ...extra } as NetworkInterfaceInfo
}

test('endpoint candidates: IPv4 and global IPv6 addresses; never ULA, link-local, loopback, the mesh interface or the overlay ranges', () => {
  const overlay = [parseCidr('100.96.0.0/16'), parseCidr('fd3c:1:2::/48')]
  const found = localAddresses({ iface: 'wgmesh0', ranges: overlay }, {
    lo: [iface('127.0.0.1', '127.0.0.1/8', { internal: true }), iface('::1', '::1/128', { internal: true })],
    eth0: [
      iface('198.18.1.1', '198.18.0.0/15'), iface('2001:db8:1::1', '2001:db8:1::1/64'), iface('fe80::1', 'fe80::1/64', { scopeid: 2 }),
      iface('fd00::5', 'fd00::5/64'), iface('fd3c:1:2::7', 'fd3c:1:2::7/64')
    ],
    eth1: [iface('100.96.4.4', '100.96.0.0/16'), iface('2a01:4f8::9', '2a01:4f8::9/64')],
    wgmesh0: [iface('100.96.1.2', '100.96.1.2/16'), iface('fd3c:1:2::9', 'fd3c:1:2::9/48')]
  })
  assert.deepEqual(found.map(a => `${a.iface} ${a.address}`), ['eth0 198.18.1.1', 'eth0 2001:db8:1::1', 'eth1 2a01:4f8::9'])
  assert.deepEqual([...underlayFamilies(found)].sort(), [4, 6])
  assert.deepEqual(endpointCandidates(found, 51820), ['198.18.1.1:51820', '[2001:db8:1::1]:51820', '[2a01:4f8::9]:51820'])
  // an IPv6-only host: its global addresses are all it has
  const v6only = localAddresses({ iface: 'wgmesh0', ranges: overlay }, { eth0: [iface('2001:db8:1::3', '2001:db8:1::3/64'), iface('fe80::3', 'fe80::3/64', { scopeid: 2 })] })
  assert.deepEqual(endpointCandidates(v6only, 51820, ['[2001:db8:ffff::3]:40000']), ['[2001:db8:ffff::3]:40000', '[2001:db8:1::3]:51820'])
  assert.deepEqual([...underlayFamilies(v6only)], [6])
})

test('path manager: an IPv6-only host punches its dual-stack peer at its IPv6 candidate at once', () => {
  const [me, peer] = ['me6', 'dual'].map(testNode)
  const table = new Membership({ selfId: me!.signer.nodeId, settings, ula })
  const self = recordOf(me!, { nat: 'public', endpoints: ['[2001:db8:1::1]:51820'] })
  table.accept(self, sealRecord(me!, self), T0, 'self')
  const peerRec = recordOf(peer!, { nat: 'public', endpoints: ['198.18.1.2:51820', '[2001:db8:1::2]:51820'] })
  table.accept(peerRec, sealRecord(peer!, peerRec), T0, 'gossip')
  const pm = new PathManager(pathPolicy(25))
  pm.step(T0, table, self, 'public', undefined, [parseCidr('2001:db8:1::/64')], new Map())
  assert.equal(pm.current.get(peerRec.nodeId)?.endpoint, '[2001:db8:1::2]:51820')
  assert.deepEqual(pm.view(peerRec.nodeId)?.candidates, ['[2001:db8:1::2]:51820'])
  // a dual-stack host keeps the peer's order: IPv4 first
  const pm2 = new PathManager(pathPolicy(25))
  pm2.step(T0, table, self, 'public', undefined, [parseCidr('198.18.0.0/15'), parseCidr('2001:db8:1::/64')], new Map())
  assert.deepEqual(pm2.view(peerRec.nodeId)?.candidates, ['198.18.1.2:51820', '[2001:db8:1::2]:51820'])
  assert.equal(pm2.current.get(peerRec.nodeId)?.endpoint, '198.18.1.2:51820')
})
