import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Membership } from '@wgmesh/core'
import { BEACON_DIAL_DELAY_MS, Redialer } from '../src/redialer.js'
import { silentLogger } from '../src/logger.js'
import type { GossipNode } from '../src/transport/index.js'
import { T0, recordOf, sealRecord, settings, testNode, ula } from '../../core/test/fixtures.js'

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

/** A redialer over `g` with seeds `seeds` and its own table (fake clock). */
function beaconRig (g: ReturnType<typeof fakeGossip>, seeds: string[] = []): { r: Redialer, table: Membership, clock: { now: number } } {
  const clock = { now: T0 }
  const me = testNode('me')
  const table = new Membership({ selfId: me.signer.nodeId, settings, ula })
  const r = new Redialer(seeds, { now: () => clock.now, gossip: () => g.node, table: () => table, selfId: () => me.signer.nodeId, known: () => [], log: silentLogger })
  return { r, table, clock }
}

test('a LAN neighbour heard while connected to a mesh is dialed only if gossip has not brought its record within BEACON_DIAL_DELAY_MS', () => {
  const nb = testNode('nb')
  const addr = '/ip4/198.18.1.9/tcp/51821'
  // its record comes by gossip within the delay: never dialed
  {
    const g = fakeGossip(1)
    const { r, table, clock } = beaconRig(g)
    r.discovered(nb.signer.nodeId, addr)
    assert.deepEqual(g.dialed, [], 'held while connected')
    clock.now += BEACON_DIAL_DELAY_MS / 2
    const rec = recordOf(nb, { gossipAddrs: [addr] })
    table.accept(rec, sealRecord(nb, rec), clock.now, 'gossip')
    assert.ok(table.get(nb.signer.nodeId) !== undefined, 'the record is in the table')
    clock.now += BEACON_DIAL_DELAY_MS
    r.redial()
    r.discovered(nb.signer.nodeId, addr)
    assert.deepEqual(g.dialed, [], 'its record came: no dial of our own')
  }
  // it stays unknown (another mesh): dialed once the delay has passed, by the redial tick
  {
    const g = fakeGossip(1)
    const { r, clock } = beaconRig(g)
    r.discovered(nb.signer.nodeId, addr)
    clock.now += BEACON_DIAL_DELAY_MS - 1
    r.redial()
    r.discovered(nb.signer.nodeId, addr)
    assert.deepEqual(g.dialed, [], 'not before the delay')
    clock.now += 1
    r.redial()
    assert.deepEqual(g.dialed, [addr], 'dialed when the delay ran out')
  }
})

test('a LAN neighbour is dialed at once when this node has no way into a mesh; held while a seed is still unreached', () => {
  const nb = testNode('nb')
  const addr = '/ip4/198.18.1.9/tcp/51821'
  {
    const g = fakeGossip(0)
    const { r } = beaconRig(g)
    r.discovered(nb.signer.nodeId, addr)
    assert.deepEqual(g.dialed, [addr], 'no connection, no seed: the beacon is the only way in')
  }
  {
    const g = fakeGossip(0)
    g.node.dial = async (a) => { g.dialed.push(a); throw new Error('connection refused') } // the seed is still starting
    const { r, clock } = beaconRig(g, ['/ip4/198.18.1.1/tcp/51821'])
    r.redial()
    r.discovered(nb.signer.nodeId, addr)
    assert.deepEqual(g.dialed, ['/ip4/198.18.1.1/tcp/51821'], 'the seed is dialed, the neighbour held')
    clock.now += BEACON_DIAL_DELAY_MS
    r.discovered(nb.signer.nodeId, addr)
    assert.ok(g.dialed.includes(addr), 'dialed once the delay ran out, the seed still unreached')
  }
})

test('a seed whose dial was refused is dialed again when its back-off ends, by the timer the host gives, not the next tick', async () => {
  const seedAddr = '/ip4/198.18.1.1/tcp/51821'
  const g = fakeGossip(0)
  let listening = false
  g.node.dial = async (a) => { g.dialed.push(a); if (!listening) throw new Error('connect ECONNREFUSED'); return '12D3KooWSeed' }
  const clock = { now: T0 }
  const timers: Array<{ at: number, fn: () => void }> = []
  const me = testNode('me')
  const table = new Membership({ selfId: me.signer.nodeId, settings, ula })
  const r = new Redialer([seedAddr], {
    now: () => clock.now, gossip: () => g.node, table: () => table, selfId: () => me.signer.nodeId, known: () => [], log: silentLogger,
    later: (ms, fn) => { timers.push({ at: clock.now + ms, fn }) }
  })
  const settle = async (): Promise<void> => { for (let i = 0; i < 5; i++) await Promise.resolve() }
  r.redial()
  await settle()
  assert.deepEqual(g.dialed, [seedAddr])
  assert.equal(timers.length, 1, 'one retry asked for')
  const first = timers[0]!
  assert.ok(first.at - T0 >= 75 && first.at - T0 <= 100, `the first retry within 75–100 ms (${first.at - T0})`)
  // the timer fires at its time: the seed is dialed again, no redial tick in between
  clock.now = first.at
  listening = true
  first.fn()
  await settle()
  assert.deepEqual(g.dialed, [seedAddr, seedAddr])
  assert.equal(r.urgent(), true, 'the fake holds no connection')
  assert.equal(timers.length, 1, 'a dial that succeeded asks for no retry')
})
