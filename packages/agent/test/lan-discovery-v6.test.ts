/**
 * LAN discovery over IPv6 (issue 11), the agent's side: what an IPv6 beacon names (global and
 * ULA addresses only, link-local ones apart and only to check the source; within
 * MAX_BEACON_BYTES at the most addresses), the strict decoder per family, which of a
 * neighbour's addresses is used, the source/replay checks for a link-local source, and a
 * dual-stack neighbour: IPv4 while heard over IPv4, IPv6 when only that is heard, lost when
 * neither. The beacon sockets are a stand-in that hands beacons in directly (the sockets are
 * tested in packages/nat/test/lan-beacon6.test.ts, the whole over a real link in
 * test/netns/ipv6-lan.test.ts).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { createSigner, open, parseCidr, seal, type RecordSigner } from '@wgmesh/core'
import { MAX_BEACON_BYTES, type LanBeacon, type LanBeaconInit } from '@wgmesh/nat'
import { decodeBeacon, pickAddress6, startLanDiscovery, type LanDiscovery } from '../src/lan-discovery.js'
import type { Logger } from '../src/logger.js'

const MESH_KEY = new Uint8Array(32).fill(7)
const silent: Logger = { debug () {}, info () {}, warn () {}, error () {} }
const nonce = (): string => randomBytes(16).toString('base64url')
const body = (o: object): Uint8Array => new TextEncoder().encode(JSON.stringify(o))
const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

test('decodeBeacon: an IPv6 beacon names global/ULA addresses (1-8) and link-local ones apart (0-8); each family only its own', () => {
  const now = 1_000_000
  const good = { t: 'lan', wgPort: 51820, at: now, n: nonce(), addrs: ['2001:DB8:1::2', 'fd00::2'], ll: ['fe80::2'], gossipPort: 51821 }
  const d = decodeBeacon(body(good), now, 6)
  assert.ok(typeof d !== 'string')
  assert.deepEqual(d.addrs, ['2001:db8:1::2', 'fd00::2'], 'canonical text')
  assert.deepEqual(d.ll, ['fe80::2'])
  assert.equal(d.gossipPort, 51821)
  assert.ok(typeof decodeBeacon(body({ ...good, ll: undefined }), now, 6) !== 'string', 'll is optional')
  const bad: Array<[string, object]> = [
    ['a link-local address as a candidate', { addrs: ['fe80::2'] }],
    ['IPv4 in an IPv6 beacon', { addrs: ['192.0.2.2'] }],
    ['loopback', { addrs: ['::1'] }],
    ['multicast', { addrs: ['ff02::1'] }],
    ['no address', { addrs: [] }],
    ['9 addresses', { addrs: Array.from({ length: 9 }, (_, i) => `2001:db8::${i + 1}`) }],
    ['a global address as link-local', { ll: ['2001:db8::1'] }],
    ['9 link-local addresses', { ll: Array.from({ length: 9 }, (_, i) => `fe80::${i + 1}`) }],
    ['a zone', { ll: ['fe80::2%eth0'] }],
    ['46 characters', { addrs: ['2001:db8::1' + ' '.repeat(35)] }],
    ['ll not a list', { ll: 'fe80::2' }]
  ]
  for (const [what, change] of bad) assert.equal(decodeBeacon(body({ ...good, ...change }), now, 6), 'schema', what)
  assert.equal(decodeBeacon(body({ ...good, at: now - 31_000 }), now, 6), 'age')
  // an IPv4 beacon stays IPv4-only (what older agents send and expect)
  assert.equal(decodeBeacon(body({ ...good, addrs: ['2001:db8:1::2'] }), now, 4), 'schema')
  const v4 = decodeBeacon(body({ ...good, addrs: ['192.0.2.2'] }), now, 4)
  assert.ok(typeof v4 !== 'string')
  assert.deepEqual(v4.ll, [], 'an IPv4 beacon\'s ll is ignored')
})

test('pickAddress6: the neighbour\'s address on one of our subnets, else its first global one, else its first', () => {
  const mine = [parseCidr('2001:db8:1::/64'), parseCidr('fd00:1::/64')]
  assert.equal(pickAddress6(['2001:db8:9::2', 'fd00:1::2', '2001:db8:1::2'], mine), 'fd00:1::2')
  assert.equal(pickAddress6(['fd00:9::2', '2001:db8:9::2'], mine), '2001:db8:9::2')
  assert.equal(pickAddress6(['fd00:9::2'], mine), 'fd00:9::2')
})

/** startLanDiscovery with a stand-in for the sockets: beacons go in by `hear`, payloads come out by `payload`. */
async function discovery (over: { addresses6?: string[], linkLocal?: string[], interval?: number, clock?: () => number } = {}): Promise<{
  d: LanDiscovery, signer: RecordSigner, hear: (data: Uint8Array, address: string, family: 4 | 6) => void, payload: (f: 4 | 6) => Uint8Array | undefined,
  found: string[], gossip: string[], lost: string[]
}> {
  const found: string[] = []
  const gossip: string[] = []
  const lost: string[] = []
  let init: LanBeaconInit | undefined
  const signer = createSigner(new Uint8Array(randomBytes(32)))
  const d = await startLanDiscovery({
    port: 51822, meshKey: MESH_KEY, signer, wgPort: 51820, gossipPort: 51821, excludeInterfaces: [], intervalMs: over.interval ?? 3_600_000, log: silent,
    addresses: () => ['192.0.2.1'], addresses6: () => over.addresses6 ?? ['2001:db8:1::1'], linkLocal: () => over.linkLocal ?? ['fe80::1%eth0'],
    subnets6: () => [parseCidr('2001:db8:1::/64')], ...(over.clock !== undefined ? { now: over.clock } : {}),
    onFound: (id, ep) => { found.push(`${id.slice(0, 6)} ${ep}`) },
    onGossip: (id, a) => { gossip.push(`${id.slice(0, 6)} ${a}`) },
    onLost: (id) => { lost.push(id.slice(0, 6)) },
    startBeacon: async (i): Promise<LanBeacon> => {
      init = i
      return { address: () => ({ address: '0.0.0.0', port: 51822 }), address6: () => undefined, stats: () => ({ delivered: 0, oversized: 0, rateLimited: 0, links6: 0 }), announce: async () => {}, close: async () => {} }
    }
  })
  const i = init!
  return { d, signer, hear: (data, address, family) => { i.onBeacon(data, { address, port: 51822, family }) }, payload: (f) => i.payload(f), found, gossip, lost }
}

test('our IPv6 beacon names global/ULA addresses, link-local ones apart (no zone), and fits MAX_BEACON_BYTES at the most addresses; none without an address worth naming', async () => {
  const many = Array.from({ length: 12 }, (_, i) => `2001:db8:ffff:ffff:ffff:ffff:ffff:${(0xff00 + i).toString(16)}`)
  const lls = Array.from({ length: 12 }, (_, i) => `fe80::ffff:ffff:ffff:${(0xff00 + i).toString(16)}%enp0s31f6`)
  const { d, signer, payload } = await discovery({ addresses6: ['fe80::9', '192.0.2.1', ...many], linkLocal: lls })
  try {
    const sealed = payload(6)!
    assert.ok(sealed.length <= MAX_BEACON_BYTES, `${sealed.length} bytes`)
    const o = open(MESH_KEY, sealed, MAX_BEACON_BYTES)
    assert.ok(o.ok && o.signerId === signer.nodeId)
    const b = JSON.parse(new TextDecoder().decode(o.payload)) as { addrs: string[], ll: string[], gossipPort: number }
    assert.deepEqual(b.addrs, many.slice(0, 8), 'global/ULA only, at most 8: a link-local or IPv4 address is never a candidate')
    assert.deepEqual(b.ll, lls.slice(0, 8).map(a => a.split('%')[0]))
    assert.equal(b.gossipPort, 51821)
    const b4 = JSON.parse(new TextDecoder().decode((open(MESH_KEY, payload(4)!, MAX_BEACON_BYTES) as { payload: Uint8Array }).payload)) as { addrs: string[], ll?: string[] }
    assert.deepEqual(b4.addrs, ['192.0.2.1'], 'the IPv4 beacon is as before')
    assert.equal(b4.ll, undefined)
  } finally { await d.close() }
  const none = await discovery({ addresses6: ['fe80::9'] })
  try {
    assert.equal(none.payload(6), undefined, 'only a link-local address: no IPv6 beacon')
  } finally { await none.d.close() }
})

test('an IPv6 beacon from a link-local source gives the neighbour\'s address on our subnet; a replay from elsewhere or again gives nothing', async () => {
  const { d, hear, found, gossip } = await discovery()
  const other = createSigner(new Uint8Array(randomBytes(32)))
  const id = other.nodeId.slice(0, 6)
  const beacon = seal(MESH_KEY, other, body({ t: 'lan', wgPort: 51830, at: Date.now(), n: nonce(), addrs: ['2001:db8:9::2', '2001:db8:1::2'], ll: ['fe80::2'], gossipPort: 51831 }), new Uint8Array(randomBytes(24)))
  try {
    hear(beacon, 'fe80::3%eth0', 6) // captured and replayed by another host on the link
    assert.deepEqual(found, [])
    assert.equal(d.discoveryStats().dropped.source, 1)
    hear(beacon, 'fe80::2%eth0', 6)
    assert.deepEqual(found, [`${id} [2001:db8:1::2]:51830`])
    assert.deepEqual(gossip, [`${id} /ip6/2001:db8:1::2/tcp/51831`])
    hear(beacon, 'fe80::2%eth0', 6)
    assert.equal(found.length, 1, 'a replayed nonce is heard once')
    assert.equal(d.discoveryStats().dropped.replay, 1)
    // a beacon naming a link-local address as a candidate is refused whole
    hear(seal(MESH_KEY, other, body({ t: 'lan', wgPort: 51830, at: Date.now(), n: nonce(), addrs: ['fe80::2'] }), new Uint8Array(randomBytes(24))), 'fe80::2%eth0', 6)
    assert.equal(d.discoveryStats().dropped.schema, 1)
    assert.equal(found.length, 1)
  } finally { await d.close() }
})

test('a dual-stack neighbour is reached over IPv4 while heard over IPv4, over IPv6 once only that is heard, and lost when neither is', async () => {
  let clock = 1_000_000
  const interval = 100
  const { d, hear, found, lost } = await discovery({ interval, clock: () => clock })
  const other = createSigner(new Uint8Array(randomBytes(32)))
  const id = other.nodeId.slice(0, 6)
  const v4 = (): Uint8Array => seal(MESH_KEY, other, body({ t: 'lan', wgPort: 51830, at: clock, n: nonce(), addrs: ['192.0.2.2'] }), new Uint8Array(randomBytes(24)))
  const v6 = (): Uint8Array => seal(MESH_KEY, other, body({ t: 'lan', wgPort: 51830, at: clock, n: nonce(), addrs: ['2001:db8:1::2'], ll: ['fe80::2'] }), new Uint8Array(randomBytes(24)))
  try {
    hear(v4(), '192.0.2.2', 4)
    hear(v6(), 'fe80::2%eth0', 6)
    assert.deepEqual(found, [`${id} 192.0.2.2:51830`, `${id} 192.0.2.2:51830`], 'IPv4 while heard over IPv4')
    // IPv4 falls silent (e.g. blocked), IPv6 beacons go on: moved to IPv6, not lost
    for (let i = 0; i < 40 && !found.includes(`${id} [2001:db8:1::2]:51830`); i++) {
      clock += 50
      hear(v6(), 'fe80::2%eth0', 6)
      await sleep(interval / 2)
    }
    assert.ok(found.includes(`${id} [2001:db8:1::2]:51830`), found.join(', '))
    assert.deepEqual(lost, [])
    assert.equal(d.discoveryStats().neighbours, 1)
    hear(v4(), '192.0.2.2', 4)
    assert.equal(found.at(-1), `${id} 192.0.2.2:51830`, 'back on IPv4 when heard again')
    // both silent: lost
    for (let i = 0; i < 40 && lost.length === 0; i++) { clock += 50; await sleep(interval / 2) }
    assert.deepEqual(lost, [id])
    assert.equal(d.discoveryStats().neighbours, 0)
  } finally { await d.close() }
})
