/**
 * Issue 7 (trust), findings I1, I2, I4, I5, I7: each attack a member holding the mesh key can
 * make, performed against running agents on 127.0.0.1 by a rogue libp2p node that injects
 * sealed, signed records over sync, and shown to fail. The pure rules are in
 * packages/core/test/trust.test.ts.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, statSync } from 'node:fs'
import { createServer, type Server } from 'node:net'
import { join } from 'node:path'
import { peerIdOfNodeId, shortId, type NodeRecord } from '@wgmesh/core'
import type { Agent } from '@wgmesh/agent'
import { cleanupDirs, newSigner, sealedRecord, seededSigner, startAgent, startRogue, waitFor, type Rogue, type TestAgent } from './harness.js'

let A: TestAgent, B: TestAgent, V: TestAgent
let rogue: Rogue
let meshKey: Uint8Array
const extra: TestAgent[] = []
const servers: Server[] = []

const agents = (): Agent[] => [A.agent, B.agent, V.agent]
const rejected = (a: Agent, reason: string): number => a.metrics.rejections()[reason] ?? 0
/** The peer this agent configured for a WireGuard key (fake WireGuard host). */
const wgPeer = async (a: Agent, key: string): Promise<{ endpoint?: string, allowedIps: string[] } | undefined> =>
  (await a.dump())?.peers.find(p => p.publicKey === key)
/** A read-only look at the endpoint candidates an agent's path manager holds for a peer. */
const candidatesOf = (a: Agent, nodeId: string): string[] =>
  (a as unknown as { traversal: { pathManager: { view: (id: string) => { candidates: string[] } | undefined } } }).traversal.pathManager.view(nodeId)?.candidates ?? []

before(async () => {
  A = await startAgent({ label: 'atk-a', createMesh: true })
  meshKey = A.agent.store.meshKey()!
  const seed = A.agent.listenAddrs()[0]!
  B = await startAgent({ label: 'atk-b', meshKey, peers: [seed] })
  V = await startAgent({ label: 'atk-victim', meshKey, peers: [seed], advertise: ['198.51.100.77:51820'] })
  await waitFor('three members everywhere', () => agents().every(a => a.members.active().filter(m => m.status === 'alive').length === 3), 20_000)
  rogue = await startRogue(meshKey)
  // the victim is an established member: past the window in which a joiner's fresh address
  // gives way to a holder it learns with the table (10 s after its first contact)
  await new Promise(resolve => setTimeout(resolve, 10_500))
})

after(async () => {
  await rogue?.stop()
  for (const t of [...extra, V, B, A]) await t?.agent.stop()
  for (const s of servers) s.close()
  cleanupDirs()
})

test('I1: a member claiming the victim\'s overlay address with ipSince=0 is refused on every node; 30 chases move nobody', async () => {
  const victim = V.agent.record
  const before = agents().map(a => rejected(a, 'ip-conflict'))
  const thieves: string[] = []
  for (let i = 0; i < 30; i++) {
    const s = newSigner()
    thieves.push(s.nodeId)
    const claim = sealedRecord(meshKey, s, { ipv4: victim.ipv4, ipv6: victim.ipv6, ipSince: 0, name: `thief${i}` })
    await rogue.push([claim.sealed], agents())
  }
  await waitFor('30 claims refused on every node', () => agents().every((a, i) => rejected(a, 'ip-conflict') - before[i]! >= 30), 10_000)
  for (const a of agents()) {
    assert.ok(thieves.every(id => a.members.get(id) === undefined), 'no thief entered a table')
    const v = a.members.get(V.agent.nodeId)!
    assert.equal(v.record.ipv4, victim.ipv4)
    assert.equal(v.conflict, undefined)
  }
  assert.equal(V.agent.record.ipv4, victim.ipv4, 'the victim did not move')
  assert.equal(V.agent.record.ipSalt, 0)
  for (const a of [A.agent, B.agent]) {
    const p = await wgPeer(a, victim.wgPublicKey)
    assert.deepEqual(p?.allowedIps.sort(), [`${victim.ipv4}/32`, `${victim.ipv6}/128`].sort(), 'the victim\'s peer keeps its /32 and /128')
  }
})

test('I2: a member with a lower nodeId claiming the victim\'s WireGuard key is refused everywhere; the victim stays in every plan', async (t) => {
  const victim = V.agent.record
  let s = newSigner()
  let generations = 1
  while (s.nodeId >= victim.nodeId) { s = newSigner(); generations++ }
  t.diagnostic(`${generations} key generations to find a nodeId below the victim's`)
  const before = agents().map(a => rejected(a, 'wg-key-conflict'))
  // its own addresses (hashed from another key), only the key is the victim's
  const addrs = sealedRecord(meshKey, s).record
  const claim = sealedRecord(meshKey, s, { wgPublicKey: victim.wgPublicKey, ipv4: addrs.ipv4, ipv6: addrs.ipv6, ipSince: 0 })
  await rogue.push([claim.sealed], agents())
  await waitFor('key claim refused on every node', () => agents().every((a, i) => rejected(a, 'wg-key-conflict') > before[i]!), 10_000)
  for (const a of agents()) {
    assert.equal(a.members.get(s.nodeId), undefined, `the thief (${generations} key generations to find a lower nodeId) is in no table`)
    assert.equal(a.members.get(V.agent.nodeId)?.conflict, undefined)
  }
  for (const a of [A.agent, B.agent]) {
    assert.deepEqual((await wgPeer(a, victim.wgPublicKey))?.allowedIps.sort(), [`${victim.ipv4}/32`, `${victim.ipv6}/128`].sort())
  }
})

test('I4: observed endpoints claimed for the victim go after its own, implausible ones are never used, flapping changes nothing', async () => {
  const victim = V.agent.record
  const own = new Set(victim.endpoints)
  const s = newSigner()
  const sid = shortId(victim.nodeId)
  const claimed = new Set<string>()
  let seq = Date.now()
  const claim = async (endpoint: string): Promise<void> => {
    claimed.add(endpoint)
    await rogue.push([sealedRecord(meshKey, s, { seq: ++seq, seen: { [sid]: endpoint } }).sealed], [A.agent])
  }
  // a claimer changing its (implausible) claim every 200 ms for 4 s
  const samples: Array<{ endpoint?: string, candidates: string[] }> = []
  for (let i = 0; i < 20; i++) {
    await claim(`203.0.113.${i + 1}:${4000 + i}`)
    await new Promise(resolve => setTimeout(resolve, 200))
    samples.push({ endpoint: (await wgPeer(A.agent, victim.wgPublicKey))?.endpoint, candidates: candidatesOf(A.agent, victim.nodeId) })
  }
  assert.equal(A.agent.members.get(s.nodeId)?.record.seen?.[sid], '203.0.113.20:4019', 'the claims did reach the agent')
  for (const x of samples) {
    assert.ok(x.candidates.length > 0 && x.candidates.every(c => !claimed.has(c)), `no implausible claim is a candidate: ${x.candidates.join(' ')}`)
    assert.ok(x.endpoint !== undefined && own.has(x.endpoint), `A configures one of the victim's own endpoints, not ${x.endpoint ?? 'none'}`)
  }
  // a plausible claim (the victim's own advertised host, another port) is taken, after all of its own
  await claim('198.51.100.77:40001')
  await waitFor('plausible claim listed', () => candidatesOf(A.agent, victim.nodeId).includes('198.51.100.77:40001'), 5000)
  const c = candidatesOf(A.agent, victim.nodeId)
  assert.equal(c.at(-1), '198.51.100.77:40001', `after the victim's own: ${c.join(' ')}`)
  assert.ok(c.slice(0, -1).every(e => own.has(e)))
})

test('I5: 6000 junk departures and a burst of new identities are bounded and counted; an honest late joiner still gets in', async (t) => {
  const a = A.agent
  const before = { full: rejected(a, 'departures-full'), rate: rejected(a, 'new-member-rate') }
  const junk = Array.from({ length: 6000 }, (_, i) => sealedRecord(meshKey, newSigner(), { leaving: true, name: `junk${i}` }).sealed)
  // and 200 new live identities right after the first 1100 departures (the burst of 1024
  // never-seen nodeIds is spent by then; the rate refills 10 a second)
  const fresh = Array.from({ length: 200 }, (_, i) => sealedRecord(meshKey, newSigner(), { name: `fresh${i}` }).sealed)
  const flood = [...junk.slice(0, 1100), ...fresh, ...junk.slice(1100)]
  const t0 = Date.now()
  for (let i = 0; i < flood.length; i += 3100) await rogue.push(flood.slice(i, i + 3100), [a])
  const departed = (): number => a.members.all().filter(m => m.status === 'left').length
  await waitFor('6000 departures handled', () => departed() + rejected(a, 'departures-full') - before.full >= 6000, 20_000)
  const tookMs = Date.now() - t0
  assert.ok(departed() <= 1024, `at most 1024 tombstones kept (${departed()})`)
  // every other one refused and counted (a copy the agent pulled again in its own syncs with the rogue counts again)
  assert.ok(rejected(a, 'departures-full') - before.full >= 6000 - departed())
  const limited = rejected(a, 'new-member-rate') - before.rate
  const freshIn = a.members.all().filter(m => m.record.name.startsWith('fresh')).length
  assert.ok(limited >= 100, `new identities beyond the burst refused (new-member-rate: ${limited}, taken: ${freshIn}, flood handled in ${tookMs} ms)`)
  assert.ok(a.members.size <= 1024 + 200 + 3, `table bounded: ${a.members.size}`)
  t.diagnostic(`tombstones ${departed()}, departures-full ${rejected(a, 'departures-full') - before.full}, new-member-rate ${limited}, new identities taken ${freshIn}/200, flood handled in ${tookMs} ms`)
  const info = await a.info()
  assert.ok((info.rejected['departures-full'] ?? 0) >= 6000 - 1024, '`wgmesh info --json` shows the reason')

  // an honest late joiner, seeded by the flooded node
  const L = await startAgent({ label: 'atk-late', meshKey, peers: [a.listenAddrs()[0]!] })
  extra.push(L)
  const honest = [...agents(), L.agent]
  await waitFor('the late joiner is alive on every node, and knows every honest member', () =>
    honest.every(x => x.members.get(L.agent.nodeId)?.status === 'alive') &&
    honest.every(x => L.agent.members.get(x.nodeId)?.status === 'alive'), 30_000)
  // the state file holds live members only: junk departures do not grow it
  await waitFor('state saved', () => (JSON.parse(readFileSync(join(A.dir, 'state.json'), 'utf8')) as { known: unknown[] }).known.length >= 3, 5000)
  const size = statSync(join(A.dir, 'state.json')).size
  assert.ok(size < 64 * 1024, `state.json is ${size} B`)
})

test('I7: gossip addresses other than /ip4|ip6|dns*/…/tcp/<port>[/p2p/<own id>] are refused, and never dialed', async () => {
  assert.equal(peerIdOfNodeId(A.agent.nodeId), A.agent.peerId, 'core derives the same PeerId as libp2p')
  // the fast test signer makes the same records as the product's
  const slow = seededSigner()
  const probe = sealedRecord(meshKey, slow, { name: 'slow-signer' })
  await rogue.push([probe.sealed], [A.agent])
  await waitFor('a record of the product signer is taken', () => A.agent.members.get(slow.nodeId)?.record.name === 'slow-signer', 5000)
  const listen = async (): Promise<{ port: number, hits: () => number }> => {
    let n = 0
    const srv = createServer(sock => { n++; sock.destroy() })
    servers.push(srv)
    await new Promise<void>(resolve => srv.listen(0, '127.0.0.1', resolve))
    return { port: (srv.address() as { port: number }).port, hits: () => n }
  }
  const bad = await listen()
  const good = await listen()
  const someoneElse = peerIdOfNodeId(B.agent.nodeId)!
  const before = agents().map(a => rejected(a, 'schema'))
  const badAddrs = [
    `/ip4/127.0.0.1/tcp/${bad.port}/p2p/${someoneElse}`, // another node's identity
    `/ip4/127.0.0.1/udp/${bad.port}`,
    `/ip4/127.0.0.1/tcp/${bad.port}/ws`,
    `/ip4/127.0.0.1/tcp/${bad.port}/p2p-circuit`,
    `/unix/tmp/wgmesh-${bad.port}`,
    `/ip4/0.0.0.0/tcp/${bad.port}`,
    `/dns4/localhost/tcp/${bad.port}/tls`
  ]
  const refused: NodeRecord[] = []
  for (const addr of badAddrs) {
    const r = sealedRecord(meshKey, newSigner(), { gossipAddrs: [addr] })
    refused.push(r.record)
    await rogue.push([r.sealed], agents())
  }
  const tooMany = sealedRecord(meshKey, newSigner(), { gossipAddrs: Array.from({ length: 9 }, (_, i) => `/ip4/127.0.0.${i + 2}/tcp/${bad.port}`) })
  refused.push(tooMany.record)
  await rogue.push([tooMany.sealed], agents())
  // control: a member advertising a well-formed address is dialed
  const c = newSigner()
  const control = sealedRecord(meshKey, c, { gossipAddrs: [`/ip4/127.0.0.1/tcp/${good.port}/p2p/${peerIdOfNodeId(c.nodeId)!}`] })
  await rogue.push([control.sealed], agents())
  await waitFor('refused on every node (schema)', () => agents().every((a, i) => rejected(a, 'schema') - before[i]! >= refused.length), 10_000)
  await waitFor('the well-formed address is dialed', () => good.hits() > 0, 15_000)
  await new Promise(resolve => setTimeout(resolve, 2000))
  assert.equal(bad.hits(), 0, 'nobody dialed a refused address')
  for (const a of agents()) assert.ok(refused.every(r => a.members.get(r.nodeId) === undefined))
})
