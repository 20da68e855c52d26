import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Membership } from '@wgmesh/core'
import { Redialer } from '../src/redialer.js'
import { silentLogger } from '../src/logger.js'
import type { GossipNode } from '../src/transport/index.js'
import { settings, testNode, ula } from '../../core/test/fixtures.js'

/** A gossip node that holds `n` connections and records what the redialer does with them. */
function fakeGossip (n: number): { node: GossipNode, hungUp: string[], dialed: string[], peers: Set<string> } {
  const peers = new Set(Array.from({ length: n }, (_, i) => `12D3KooWPeer${i}`))
  const hungUp: string[] = []
  const dialed: string[] = []
  const node: GossipNode = {
    peerId: '12D3KooWSelf',
    listenAddrs: () => [],
    publish: async () => 0,
    publishNotice: async () => {},
    dial: async (addr) => { dialed.push(addr); return 'x' },
    sync: async () => {},
    connectedPeers: () => [...peers],
    hangUp: async (p) => { hungUp.push(p); peers.delete(p) },
    dropConnections: () => 0,
    stop: async () => {}
  }
  return { node, hungUp, dialed, peers }
}

test('above the ceiling the redialer closes old connections down to 2 x degree, never young ones', () => {
  let now = 1_000_000
  const g = fakeGossip(20)
  const me = testNode('me')
  const r = new Redialer([], {
    now: () => now,
    gossip: () => g.node,
    table: () => new Membership({ selfId: me.signer.nodeId, settings, ula }),
    selfId: () => me.signer.nodeId,
    known: () => [],
    log: silentLogger
  })
  r.redial()
  assert.deepEqual(g.hungUp, [], 'all 20 are young')
  now += 31_000
  r.redial()
  assert.equal(g.hungUp.length, 12, '20 → 8 (degree 4)')
  assert.equal(g.peers.size, 8)
  // two new joiners connect in: 10 is under the ceiling (12), nothing more is closed
  g.peers.add('12D3KooWNew1')
  g.peers.add('12D3KooWNew2')
  now += 60_000
  r.redial()
  assert.equal(g.hungUp.length, 12)
})
