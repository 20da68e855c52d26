/**
 * The path manager with ends of no common family (issue 11): an IPv6-only and an IPv4-only
 * host, both public, are relayed at once through the one relay that reaches both, each end
 * pointing at the relay's address of its own family; a public pair that shares a family is not.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { formatEndpoint, Membership, parseCidr, pathPolicy, relayLegHost, type NodeRecord } from '@wgmesh/core'
import type { Dump } from '@wgmesh/wireguard'
import { PathManager, type RelayEndpoint } from '../src/path-manager.js'
import { T0, recordOf, sealRecord, settings, testNode, ula, type TestNode } from '../../core/test/fixtures.js'

const PORT = 40_000
/** What Relaying.endpoint answers once the relay has given its port. */
const relayPort: RelayEndpoint = (relay, _peer, wg, _ask, families) => {
  const h = relayLegHost(relay, families, wg)
  return h === undefined ? undefined : formatEndpoint(h, PORT)
}

const [n6, n4, nd, ndual, nr4, nr6] = ['v6only', 'v4only', 'dual-end', 'relay-dual', 'relay-v4', 'relay-v6'].map(testNode) as TestNode[]
const recs: Record<string, NodeRecord> = {
  v6only: recordOf(n6!, { nat: 'public', relay: true, endpoints: ['[2001:db8:1::2]:51820'] }),
  v4only: recordOf(n4!, { nat: 'public', relay: true, endpoints: ['198.18.1.3:51820'] }),
  'dual-end': recordOf(nd!, { nat: 'public', endpoints: ['198.18.1.4:51820', '[2001:db8:1::4]:51820'] }),
  'relay-dual': recordOf(ndual!, { nat: 'public', relay: true, endpoints: ['198.18.1.1:51820', '[2001:db8:1::1]:51820'] }),
  'relay-v4': recordOf(nr4!, { nat: 'public', relay: true, endpoints: ['198.18.1.5:51820'] }),
  'relay-v6': recordOf(nr6!, { nat: 'public', relay: true, endpoints: ['[2001:db8:1::6]:51820'] })
}
const nodes: Record<string, TestNode> = { v6only: n6!, v4only: n4!, 'dual-end': nd!, 'relay-dual': ndual!, 'relay-v4': nr4!, 'relay-v6': nr6! }
const SUBNETS: Record<string, string[]> = { v6only: ['2001:db8:1::/64'], v4only: ['198.18.0.0/15'], 'dual-end': ['198.18.0.0/15', '2001:db8:1::/64'] }

/** One end's path manager over a table holding every record (names in `order`: table order varies). */
function end (self: string, order: string[]): { step: (now: number, dump?: Dump) => void, route: (peer: string) => { endpoint?: string, via?: string, keepaliveS: number } | undefined, pm: PathManager } {
  const table = new Membership({ selfId: recs[self]!.nodeId, settings, ula })
  table.accept(recs[self]!, sealRecord(nodes[self]!, recs[self]!), T0, 'self')
  for (const name of order) if (name !== self) table.accept(recs[name]!, sealRecord(nodes[name]!, recs[name]!), T0, 'gossip')
  const pm = new PathManager(pathPolicy(25))
  const subnets = SUBNETS[self]!.map(parseCidr)
  return {
    pm,
    step: (now, dump) => { pm.step(now, table, recs[self]!, 'public', dump, subnets, new Map(), relayPort) },
    route: (peer) => pm.current.get(recs[peer]!.nodeId)
  }
}

test('a v6-only and a v4-only public end: relayed at once through the dual-stack relay, each end at the relay\'s address of its own family', () => {
  const names = Object.keys(recs)
  const a = end('v6only', names)
  const b = end('v4only', [...names].reverse())
  a.step(T0)
  b.step(T0)
  const ra = a.route('v4only')
  const rb = b.route('v6only')
  assert.equal(ra?.via, recs['relay-dual']!.nodeId, 'the v6-only end: via the dual-stack relay')
  assert.equal(rb?.via, ra?.via, 'both ends pick the same relay')
  assert.equal(ra?.endpoint, `[2001:db8:1::1]:${PORT}`, 'the v6-only end points at the relay\'s IPv6 address')
  assert.equal(rb?.endpoint, `198.18.1.1:${PORT}`, 'the v4-only end points at the relay\'s IPv4 address')
  assert.equal(a.pm.view(recs.v4only!.nodeId)?.path, 'punching', 'shown relayed only once it carries')
  // a public pair sharing a family is never relayed
  assert.equal(a.route('dual-end')?.via, undefined)
  assert.equal(b.route('dual-end')?.via, undefined)
  assert.equal(a.route('dual-end')?.endpoint, '[2001:db8:1::4]:51820', 'the dual-stack end is tried at its IPv6 address')
})

test('an agent restarted under a relayed session of such a pair relays again instead of holding a direct path', () => {
  const a = end('v6only', Object.keys(recs))
  const now = T0 + 60_000
  // a fresh handshake and traffic at the relay's port: what a restarted agent finds
  const dump = {
    interface: { listenPort: 51820 },
    peers: [{ publicKey: recs.v4only!.wgPublicKey, endpoint: `[2001:db8:1::1]:${PORT}`, allowedIps: [], latestHandshake: Math.floor(now / 1000) - 5, transferRx: 1000, transferTx: 1000 }]
  } as unknown as Dump
  a.step(now, dump)
  assert.equal(a.route('v4only')?.via, recs['relay-dual']!.nodeId)
  a.step(now + 1000, { ...dump, peers: [{ ...dump.peers[0]!, transferRx: 2000 }] } as unknown as Dump)
  assert.equal(a.pm.view(recs.v4only!.nodeId)?.path, 'relay', 'carrying: shown relayed')
})

test('no relay reaches both families: no relay, no endpoint, the path is down', () => {
  const without = Object.keys(recs).filter(n => n !== 'relay-dual')
  const a = end('v6only', without)
  a.step(T0)
  a.step(T0 + 20_000)
  assert.equal(a.route('v4only')?.via, undefined)
  assert.equal(a.route('v4only')?.endpoint, undefined, 'no candidate of a family this host has')
  assert.equal(a.pm.view(recs.v4only!.nodeId)?.path, 'down')
})
