/**
 * Every bad record kind that can reach an agent from the network is rejected with its reason
 * counted, and the agent keeps serving. A rogue libp2p node holding the mesh key (so it gets
 * past pnet, as a compromised or buggy member would) feeds them over sync and gossip.
 */
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import nacl from 'tweetnacl'
import { createSigner, encodeRecord, meshSettings, overlayIPv4, overlayIPv6, seal, ulaPrefix, type NodeRecord, type RecordSigner } from '@wgmesh/core'
import { createGossipNode, type GossipNode } from '../../packages/agent/src/transport/index.js'
import { meshTopic } from '@wgmesh/agent'
import { cleanupDirs, startAgent, waitFor, type TestAgent } from './harness.js'

let agent: TestAgent
let rogue: GossipNode
after(async () => {
  await rogue?.stop()
  await agent?.agent.stop()
  cleanupDirs()
})

const wgKey = (): string => randomBytes(32).toString('base64')

test('bad records are rejected, counted by reason, and the agent keeps serving', async () => {
  agent = await startAgent({ label: 'target', createMesh: true })
  const a = agent.agent
  const meshKey = a.store.meshKey()!
  const ula = ulaPrefix(meshKey)
  const { cidr4 } = meshSettings({})
  const now = Date.now()

  const recordFor = (s: RecordSigner, over: Partial<NodeRecord> = {}): NodeRecord => {
    const k = over.wgPublicKey ?? wgKey()
    return {
      v: 1, nodeId: s.nodeId, seq: 1, issuedAt: now, name: 'rogue', wgPublicKey: k,
      ipv4: overlayIPv4(cidr4, k, 0), ipv6: overlayIPv6(ula, k, 0), ipSince: now, ipSalt: 0, wgPort: 51820,
      endpoints: ['192.0.2.9:51820'], gossipAddrs: [], routes: [], tags: [], ...over
    }
  }
  const sealWith = (s: RecordSigner, r: NodeRecord | Uint8Array, key = meshKey): Uint8Array =>
    seal(key, s, r instanceof Uint8Array ? r : encodeRecord(r), new Uint8Array(randomBytes(24)))
  const signer = (): RecordSigner => createSigner(new Uint8Array(randomBytes(32)))

  const self = a.members.get(a.nodeId)!.record
  const forged = signer()
  const other = signer()
  const forgedInner = other.sign(encodeRecord(recordFor(forged)))
  forgedInner.set(Buffer.from(forged.nodeId, 'base64url'), 1) // header claims `forged`, signature is `other`'s
  const nonce = new Uint8Array(randomBytes(24))
  const badSignature = new Uint8Array([...nonce, ...nacl.secretbox(forgedInner, nonce, meshKey)])
  // a key contest is lost by the higher nodeId: find a rogue above the agent
  let keyThief = signer()
  while (keyThief.nodeId < a.nodeId) keyThief = signer()
  const victimOfMismatch = signer()

  const bad: Array<[string, Uint8Array]> = [
    ['decrypt', sealWith(signer(), recordFor(signer()), new Uint8Array(32).fill(1))],
    ['signature', badSignature],
    ['oversize', (() => { const s = signer(); return sealWith(s, recordFor(s, { tags: Array.from({ length: 32 }, (_, i) => `t${i}${'x'.repeat(60)}`), routes: Array.from({ length: 64 }, (_, i) => `2001:db8:${i}:ffff:ffff:ffff:ffff:0/112`) })) })()],
    ['malformed', (() => { const s = signer(); return sealWith(s, new TextEncoder().encode('{"v":1,')) })()],
    ['schema', (() => { const s = signer(); return sealWith(s, recordFor(s, { ipv4: '999.1.1.1' })) })()],
    ['node-id-mismatch', sealWith(victimOfMismatch, recordFor(signer()))],
    ['clock-skew', (() => { const s = signer(); return sealWith(s, recordFor(s, { issuedAt: now + 3_600_000 })) })()],
    ['ip-outside-mesh', (() => { const s = signer(); return sealWith(s, recordFor(s, { ipv4: '10.1.2.3' })) })()],
    ['ip-conflict', (() => { const s = signer(); return sealWith(s, recordFor(s, { ipv4: self.ipv4, ipSince: now + 10 })) })()],
    ['wg-key-conflict', (() => { const own = recordFor(keyThief); return sealWith(keyThief, { ...own, wgPublicKey: self.wgPublicKey }) })()],
    ['garbage', new Uint8Array(randomBytes(300))]
  ]
  const good = signer()
  const goodV2 = recordFor(good, { seq: 10, name: 'honest' })
  let toSync: Uint8Array[] = bad.map(([, b]) => b)
  const rogueHash = new Uint8Array(randomBytes(32))
  rogue = await createGossipNode({
    identitySeed: new Uint8Array(randomBytes(32)),
    meshKey,
    listen: ['/ip4/127.0.0.1/tcp/0'],
    topic: meshTopic(ula),
    validate: () => 'accept',
    onMessage: () => {},
    // a rogue that always claims a different table and sends its batch whatever it is asked for
    // (one hash for its whole life: a hash that changed between its first exchange and the
    // agent's gossipsub subscription would make its transport exchange once more, batch again)
    sync: { hash: () => rogueHash, digest: () => [], recordsFor: () => toSync },
    onSyncResult: () => {}
  })
  await rogue.dial(a.listenAddrs()[0]!) // connect → push-pull sync delivers the bad batch
  await waitFor('every bad kind counted', () => {
    const r = a.metrics.rejections()
    return ['decrypt', 'signature', 'oversize', 'malformed', 'schema', 'node-id-mismatch', 'clock-skew', 'ip-outside-mesh', 'ip-conflict', 'wg-key-conflict']
      .every(k => (r[k] ?? 0) >= 1)
  }, 5000).catch((err: Error) => { throw new Error(`${err.message}: ${JSON.stringify(a.metrics.rejections())}`) })
  const r = a.metrics.rejections()
  assert.equal(r.decrypt, 2, 'wrong mesh key and random garbage both fail decryption')
  for (const k of ['signature', 'oversize', 'malformed', 'schema', 'node-id-mismatch', 'clock-skew', 'ip-outside-mesh', 'ip-conflict', 'wg-key-conflict']) {
    assert.equal(r[k], 1, `${k} counted once`)
  }
  assert.equal(a.members.size, 1, 'nothing bad entered the table')

  // replay over gossip: a good record, then an older seq of the same node
  toSync = [sealWith(good, goodV2)]
  await rogue.sync(rogue.connectedPeers()[0]!)
  await waitFor('honest record accepted', () => a.members.get(good.nodeId)?.record.name === 'honest', 3000)
  await waitFor('replay counted', async () => {
    await rogue.publish(sealWith(good, recordFor(good, { seq: 5, name: 'stale', wgPublicKey: goodV2.wgPublicKey })))
    return (a.metrics.rejections().replay ?? 0) >= 1
  }, 5000, 200)
  assert.equal(a.members.get(good.nodeId)?.record.name, 'honest', 'the older record did not replace the newer')

  // still serving: control socket answers, metrics render, the own record is intact
  const info = await a.info()
  assert.equal(info.ipv4, self.ipv4)
  assert.equal(info.peers.length, 1)
  assert.ok(info.rejected['signature'] === 1)
  const text = await a.metrics.registry.metrics()
  assert.match(text, /wgmesh_records_rejected_total\{reason="wg-key-conflict"\} 1/)
})
