// The gossip node's answer to a late gossipsub subscription (gossip-node.ts): a record taken
// between the first exchange with a peer and that peer's subscription would never be sent to it
// by gossipsub; one more exchange brings it. The peer here is a plain libp2p node with the
// agent's stack (the mesh gate, noise, yamux, gossipsub told of peers at connection as the agent's is), driven by the test, so that it
// subscribes exactly when the test says. Real sockets on 127.0.0.1.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { gossipsub, StrictNoSign } from '@libp2p/gossipsub'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import { createGossipNode, exchangeDigest, meshGate, peerProtocols, SYNC_PROTOCOL } from '../src/transport/index.js'
import type { DigestSyncHandler, GossipNode } from '../src/transport/index.js'

const TOPIC = 'wgmesh/test/v1'
const enc = (s: string): Uint8Array => new TextEncoder().encode(s)
const dec = (b: Uint8Array): string => new TextDecoder().decode(b)
const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }
async function waitFor (pred: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const t0 = Date.now()
  while (!pred()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`)
    await sleep(10)
  }
}

/** A toy table: its items are the digest; records sent = ours the other lacks. */
function toyHandler (table: Uint8Array[]): DigestSyncHandler {
  return {
    hash: () => createHash('sha256').update(table.map(dec).sort().join('\0')).digest(),
    digest: () => table,
    recordsFor: (remote) => { const have = new Set(remote.map(dec)); return table.filter(r => !have.has(dec(r))) }
  }
}

const stops: Array<() => Promise<void>> = []
after(async () => { await Promise.all(stops.map(async s => { await s() })) })

for (const changed of [true, false]) {
  test(changed
    ? 'a record the seed takes between a peer\'s first exchange and its subscription reaches that peer by one more exchange'
    : 'no extra exchange when the seed\'s table did not change before the peer subscribed', async () => {
    const meshKey = new Uint8Array(randomBytes(32))
    const seedTable = [enc('x'), enc('y')]
    const seedSyncs: string[][] = []
    const seed: GossipNode = await createGossipNode({
      identitySeed: new Uint8Array(randomBytes(32)),
      meshKey,
      listen: ['/ip4/127.0.0.1/tcp/0'],
      topic: TOPIC,
      validate: () => 'accept',
      onMessage: () => {},
      sync: toyHandler(seedTable),
      onSyncResult: (r) => { seedSyncs.push(r.received.map(dec)) }
    })
    stops.push(async () => { await seed.stop() })

    const gossipsubProtocols: string[] = []
    const peer = await createLibp2p({
      privateKey: await generateKeyPair('Ed25519'),
      addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
      transports: [tcp()],
      connectionProtector: meshGate(meshKey),
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      connectionMonitor: { enabled: false },
      services: { peerProtocols: peerProtocols(() => gossipsubProtocols), pubsub: gossipsub({ globalSignaturePolicy: StrictNoSign, allowPublishToZeroTopicPeers: true }) }
    })
    stops.push(async () => { await peer.stop() })
    gossipsubProtocols.push(...peer.services.pubsub.protocols)
    const peerTable = [enc('p')]
    const inbound: string[][] = []
    await peer.handle(SYNC_PROTOCOL, async (stream) => {
      inbound.push((await exchangeDigest(stream, toyHandler(peerTable))).received.map(dec))
    })

    // the peer connects and runs its first exchange, not subscribed to the topic yet
    const conn = await peer.dial(multiaddr(seed.listenAddrs()[0]!))
    const first = await exchangeDigest(await conn.newStream(SYNC_PROTOCOL), toyHandler(peerTable))
    assert.deepEqual(first.received.map(dec), ['x', 'y'])
    await waitFor(() => seedSyncs.length === 1, 'the seed\'s side of the first exchange')
    assert.deepEqual(seedSyncs[0], ['p'])
    await sleep(300) // the gossipsub streams settle; still no subscription
    assert.equal(inbound.length, 0, 'no exchange from the seed before the peer subscribes')

    if (changed) seedTable.push(enc('late')) // e.g. another joiner's record, published to subscribers only
    peer.services.pubsub.subscribe(TOPIC)
    if (changed) {
      await waitFor(() => inbound.length === 1, 'an exchange from the seed after the subscription')
      assert.ok(inbound[0]?.includes('late') === true, `the record taken meanwhile came: ${JSON.stringify(inbound[0])}`)
    } else {
      await waitFor(() => peer.services.pubsub.getSubscribers(TOPIC).length === 1, 'the seed\'s subscription seen by the peer')
      await sleep(1000)
      assert.equal(inbound.length, 0, 'tables unchanged: no extra exchange')
    }
  })
}
