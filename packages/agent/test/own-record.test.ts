// When this node's own record goes out (own-record.ts). The gossip here behaves as gossipsub
// does for the agent: bytes it has seen before are dropped with no recipients
// (`ignoreDuplicatePublishError`), and a message reaches the peers subscribed at that moment.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { decodeRecord, open } from '@wgmesh/core'
import { OwnRecord } from '../src/own-record.js'
import { silentLogger } from '../src/logger.js'
import { MESH_KEY, T0, recordOf, testNode } from '../../core/test/fixtures.js'

class GossipLike {
  connected = 0
  subscribers = 0
  calls = 0
  readonly delivered: Uint8Array[] = []
  private readonly seen = new Set<string>()

  async publish (data: Uint8Array): Promise<number> {
    this.calls++
    const id = createHash('sha256').update(data).digest('hex')
    if (this.seen.has(id)) return 0
    this.seen.add(id)
    if (this.subscribers > 0) this.delivered.push(data)
    return this.subscribers
  }

  connectedPeers (): string[] { return Array.from({ length: this.connected }, (_, i) => `peer${i}`) }
}

const turn = async (): Promise<void> => { await new Promise(resolve => setImmediate(resolve)) }

function ownRecord (gossip: GossipLike): OwnRecord {
  const node = testNode('own')
  return new OwnRecord({
    now: () => T0,
    log: silentLogger,
    meshKey: MESH_KEY,
    signer: node.signer,
    build: (seq) => recordOf(node, { seq }),
    accept: () => {},
    gossip: () => gossip,
    members: () => 1,
    refreshMs: 20 * 60_000,
    refuted: () => ({ localHealth: 0 })
  }, 0)
}

test('a record that first went to nobody goes out again, as a new message, once someone is connected and subscribed; then no more', async () => {
  const gossip = new GossipLike()
  const own = ownRecord(gossip)
  const first = own.renew()
  await own.publish()
  assert.equal(gossip.calls, 1)

  // alone: nothing to publish to, nothing published
  own.heartbeat(); await turn()
  assert.equal(gossip.calls, 1)

  // connected, the subscription not exchanged yet: tried again, reaches nobody again
  gossip.connected = 1
  own.heartbeat(); await turn()
  assert.equal(gossip.calls, 2)
  assert.equal(gossip.delivered.length, 0)

  // subscribed: the next heartbeat's publication reaches it (the same bytes would have been dropped)
  gossip.subscribers = 1
  own.heartbeat(); await turn()
  assert.equal(gossip.calls, 3)
  assert.equal(gossip.delivered.length, 1)
  const sent = gossip.delivered[0] ?? new Uint8Array(0)
  assert.notDeepEqual(Buffer.from(sent), Buffer.from(first), 'a fresh seal')
  const opened = open(MESH_KEY, sent)
  assert.ok(opened.ok)
  const decoded = decodeRecord(opened.payload)
  assert.ok(decoded.ok)
  assert.equal(decoded.record.seq, own.seq, 'the same record: no new seq')

  // delivered: heartbeats publish nothing more while the record is unchanged
  for (let i = 0; i < 3; i++) { own.heartbeat(); await turn() }
  assert.equal(gossip.calls, 3)
  own.stop()
})

test('publishing the same bytes twice hands them to gossip once', async () => {
  const gossip = new GossipLike()
  gossip.connected = 1
  gossip.subscribers = 2
  const own = ownRecord(gossip)
  own.renew()
  await own.publish()
  await own.publish()
  assert.equal(gossip.calls, 1)
  assert.equal(gossip.delivered.length, 1)
  // and a delivered record is not retried
  own.heartbeat(); await turn()
  assert.equal(gossip.calls, 1)
  own.stop()
})
