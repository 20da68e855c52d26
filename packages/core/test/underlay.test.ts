/**
 * The underlay's families (issue 11): IPv6 scopes, where the gossip listener binds for a
 * --gossip-host, which hosts may be a --gossip-host at all, endpoint families, and the
 * candidates of both families a peer is tried at.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { endpointFamily, gossipHostProblem, gossipListenAddrs, isGlobalV6, isLinkLocalGossipAddr, isLoopbackHost, v6Scope } from '../src/underlay.js'
import { indexSeenClaims, peerCandidates } from '../src/candidates.js'
import { parseCidr } from '../src/ip.js'
import { recordOf, testNode } from './fixtures.js'

test('IPv6 scopes: global unicast (the documentation prefix included), ULA, link-local, the rest', () => {
  for (const g of ['2001:db8:1::1', '2a01:4f8::1', '2001:DB8::A', '3fff::1']) assert.equal(v6Scope(g), 'global', g)
  for (const u of ['fd00::1', 'fc00::1', 'fd3c:1:2::9']) assert.equal(v6Scope(u), 'ula', u)
  for (const l of ['fe80::1', 'febf:ffff::1']) assert.equal(v6Scope(l), 'link-local', l)
  assert.equal(v6Scope('::'), 'unspecified')
  assert.equal(v6Scope('::1'), 'loopback')
  assert.equal(v6Scope('ff02::1'), 'multicast')
  assert.equal(v6Scope('::ffff:198.18.1.1'), 'other') // v4-mapped: not an IPv6 underlay address
  assert.equal(v6Scope('64:ff9b::1'), 'other')
  assert.equal(v6Scope('198.18.1.1'), undefined)
  assert.equal(v6Scope('nope'), undefined)
  assert.equal(isGlobalV6('2001:db8::1'), true)
  assert.equal(isGlobalV6('fd00::1'), false)
  assert.equal(isGlobalV6('fe80::1'), false)
  assert.equal(isGlobalV6('198.18.1.1'), false)
})

test('gossip listener: :: (the default) = one socket per family; 0.0.0.0 = IPv4 only; an address = itself', () => {
  assert.deepEqual(gossipListenAddrs(undefined, 51821), ['/ip4/0.0.0.0/tcp/51821', '/ip6/::/tcp/51821'])
  assert.deepEqual(gossipListenAddrs('::', 7000), ['/ip4/0.0.0.0/tcp/7000', '/ip6/::/tcp/7000'])
  assert.deepEqual(gossipListenAddrs('0:0::0', 7000), ['/ip4/0.0.0.0/tcp/7000', '/ip6/::/tcp/7000'])
  assert.deepEqual(gossipListenAddrs('0.0.0.0', 51821), ['/ip4/0.0.0.0/tcp/51821'])
  assert.deepEqual(gossipListenAddrs('127.0.0.1', 0), ['/ip4/127.0.0.1/tcp/0'])
  assert.deepEqual(gossipListenAddrs('2001:DB8:1:0::1', 51821), ['/ip6/2001:db8:1::1/tcp/51821'])
  assert.deepEqual(gossipListenAddrs('::1', 0), ['/ip6/::1/tcp/0'])
  assert.throws(() => gossipListenAddrs('foo', 1), /not an IP address/)
})

test('--gossip-host: any IPv4, any IPv6 that needs no zone; link-local, multicast and names refused with a reason', () => {
  for (const ok of ['0.0.0.0', '198.18.1.1', '127.0.0.1', '::', '::1', '2001:db8::1', 'fd00::1']) assert.equal(gossipHostProblem(ok), undefined, ok)
  assert.match(gossipHostProblem('fe80::1') ?? '', /link-local .*zone/)
  assert.match(gossipHostProblem('ff02::1') ?? '', /multicast/)
  assert.match(gossipHostProblem('host.example') ?? '', /not an IP address/)
  assert.match(gossipHostProblem('1.2.3.256') ?? '', /not an IP address/)
  assert.equal(isLoopbackHost('127.0.0.1'), true)
  assert.equal(isLoopbackHost('::1'), true)
  assert.equal(isLoopbackHost('::'), false)
  assert.equal(isLoopbackHost(undefined), false)
})

test('gossip and endpoint addresses: link-local recognised, families told apart', () => {
  assert.equal(isLinkLocalGossipAddr('/ip6/fe80::1/tcp/51821/p2p/12D3KooWx'), true)
  assert.equal(isLinkLocalGossipAddr('/ip6/2001:db8::1/tcp/51821'), false)
  assert.equal(isLinkLocalGossipAddr('/ip4/169.254.1.1/tcp/51821'), false)
  assert.equal(endpointFamily('198.18.1.1:51820'), 4)
  assert.equal(endpointFamily('[2001:db8::1]:51820'), 6)
  assert.equal(endpointFamily('2001:db8::1:51820'), undefined)
  assert.equal(endpointFamily(undefined), undefined)
})

test('candidates of both families: as the peer advertises them; a family this host has no address of is skipped', () => {
  const peer = recordOf(testNode('dual'), { endpoints: ['198.18.1.2:51820', '[2001:db8:1::2]:51820'] })
  const v4 = parseCidr('198.18.0.0/15')
  const v6 = parseCidr('2001:db8:1::/64')
  // dual-stack here too: both, IPv4 first (as advertised)
  assert.deepEqual(peerCandidates(peer, { localSubnets: [v4, v6], seen: indexSeenClaims([peer]), families: new Set([4, 6]) }), ['198.18.1.2:51820', '[2001:db8:1::2]:51820'])
  // an IPv6-only host never spends a punching slot on the IPv4 candidate
  assert.deepEqual(peerCandidates(peer, { localSubnets: [v6], seen: indexSeenClaims([peer]), families: new Set([6]) }), ['[2001:db8:1::2]:51820'])
  assert.deepEqual(peerCandidates(peer, { localSubnets: [v4], seen: indexSeenClaims([peer]), families: new Set([4]) }), ['198.18.1.2:51820'])
  // unknown (no local address found): nothing filtered
  assert.deepEqual(peerCandidates(peer, { localSubnets: [], seen: indexSeenClaims([peer]), families: new Set() }), ['198.18.1.2:51820', '[2001:db8:1::2]:51820'])
  // a peer on our IPv6 /64 ranks first, its endpoint in canonical [v6]:port form
  const v6first = recordOf(testNode('v6b'), { endpoints: ['198.18.7.7:51820', '[2001:DB8:1:0::3]:51820'] })
  assert.deepEqual(peerCandidates(v6first, { localSubnets: [v6, parseCidr('192.0.2.0/28')], seen: indexSeenClaims([v6first]) }), ['[2001:db8:1::3]:51820', '198.18.7.7:51820'])
})
