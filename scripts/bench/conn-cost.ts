/**
 * CPU per gossip connection (a profiling aid, not a benchmark of record): K+1 gossip nodes in
 * one process on 127.0.0.1 (the agent's transport: TCP, the mesh gate, noise, yamux,
 * gossipsub, the digest sync on connect); node 0 dials the K others one after the other and
 * each connection is counted done once both ends see the other subscribed and the sync ran.
 * Prints the process's CPU (user+sys, both ends of every connection) per connection, and its
 * breakdown in phases.   node --import tsx scripts/bench/conn-cost.ts [K]
 */
import { randomBytes } from 'node:crypto'
import { createGossipNode, type GossipNode } from '../../packages/agent/src/transport/index.js'

const K = Number(process.argv[2] ?? 20)
const meshKey = new Uint8Array(randomBytes(32))
const emptySync = { hash: () => new Uint8Array(32), digest: () => [], recordsFor: () => [] }
let syncs = 0
const make = async (): Promise<GossipNode> => await createGossipNode({
  identitySeed: new Uint8Array(randomBytes(32)),
  meshKey,
  listen: ['/ip4/127.0.0.1/tcp/0'],
  topic: 'bench',
  validate: () => 'accept',
  onMessage: () => {},
  sync: emptySync,
  onSyncResult: () => { syncs++ }
})
const nodes: GossipNode[] = []
for (let i = 0; i <= K; i++) nodes.push(await make())
const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }
await sleep(500)
const c0 = process.cpuUsage()
const t0 = Date.now()
for (let i = 1; i <= K; i++) {
  const before = syncs
  await nodes[0]!.dial(nodes[i]!.listenAddrs()[0]!)
  while (syncs === before) await sleep(1)
}
const c1 = process.cpuUsage(c0)
const ms = (c1.user + c1.system) / 1000
console.log(`${K} connections: ${ms.toFixed(0)} ms CPU, ${(ms / K).toFixed(1)} ms per connection (both ends), ${((Date.now() - t0) / K).toFixed(1)} ms wall each`)
// the steady cost of holding them: 10 s idle
const c2 = process.cpuUsage()
await sleep(10_000)
const c3 = process.cpuUsage(c2)
console.log(`idle with ${K} connections (${K + 1} nodes): ${((c3.user + c3.system) / 10_000 / 10).toFixed(2)} % of a core`)
await Promise.all(nodes.map(async n => { await n.stop() }))
