/**
 * Certificate mode with real agents on 127.0.0.1 (fake WireGuard): start checks, revocation
 * by `revoke` on the control socket (gone everywhere, refused after), revocations reaching a
 * node that was down (sync) and surviving a restart (state dir). The same against real
 * WireGuard in network namespaces: test/netns/cert-mode.test.ts.
 */
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { StateStore, callControl, type AgentInfo } from '@wgmesh/agent'
import {
  caPublicFromSeed, createSigner, encodeCaPublic, nodeIdFromSeed, revocationMessage, seal, signCert, signRevocation, type NodeCert
} from '@wgmesh/core'
import { cleanupDirs, sealedRecord, startAgent, startRogue, tempDir, waitFor, type TestAgent } from './harness.js'

const agents: TestAgent[] = []
after(async () => {
  await Promise.allSettled(agents.map(async a => await a.agent.stop()))
  cleanupDirs()
})

const DAY = 86_400_000
const caSeed = new Uint8Array(randomBytes(32))
const CA = caPublicFromSeed(caSeed)
const caDir = tempDir('ca')
const caFile = join(caDir, 'ca.pub')
writeFileSync(caFile, encodeCaPublic(CA) + '\n')

/** A state dir with its node key, and a certificate for that node. */
function certified (label: string, over: Partial<NodeCert> = {}): { stateDir: string, nodeId: string, cert: string } {
  const stateDir = tempDir(label)
  const store = new StateStore(stateDir)
  store.ensureDir()
  const nodeId = nodeIdFromSeed(store.nodeSeed())
  const now = Date.now()
  const token = signCert(caSeed, { v: 1, ca: CA.fingerprint, serial: randomBytes(16).toString('hex'), nodeId, name: label, roles: [], notBefore: now - 1000, notAfter: now + DAY, ...over })
  const cert = join(caDir, `${label}.cert`)
  writeFileSync(cert, token + '\n')
  return { stateDir, nodeId, cert }
}

function revocationOf (nodeId: string): string {
  return signRevocation(caSeed, { v: 1, ca: CA.fingerprint, nodeId, issuedAt: Date.now(), until: Date.now() + DAY })
}

async function info (a: TestAgent): Promise<AgentInfo> { return await a.agent.info() }

test('an agent refuses to start on a certificate that is expired, another node\'s, or of another CA, saying what to do', async () => {
  const mine = certified('refused', { notBefore: Date.now() - 2 * DAY, notAfter: Date.now() - DAY })
  await assert.rejects(startAgent({ label: 'refused', stateDir: mine.stateDir, createMesh: true, ca: caFile, cert: mine.cert }),
    /cannot be used: it expired at .*To get a valid one, on the CA host run 'wgmesh ca sign --ca-dir DIR --node-id /)
  const other = certified('other')
  await assert.rejects(startAgent({ label: 'other', stateDir: mine.stateDir, createMesh: true, ca: caFile, cert: other.cert }),
    /issued to another node .* this node's id, from the state directory .* is /)
  const otherCa = join(caDir, 'other-ca.pub')
  writeFileSync(otherCa, encodeCaPublic(caPublicFromSeed(new Uint8Array(randomBytes(32)))) + '\n')
  await assert.rejects(startAgent({ label: 'other', stateDir: other.stateDir, createMesh: true, ca: otherCa, cert: other.cert }), /signed by another CA/)
  await assert.rejects(startAgent({ label: 'other', stateDir: other.stateDir, createMesh: true, ca: caFile }), /--ca needs --cert/)
})

test('revoke: the node is gone from every table and WireGuard at once, cannot come back, and a node that was down learns it', async () => {
  const ids = ['c0', 'c1', 'c2', 'c3'].map(l => ({ label: l, ...certified(l) }))
  const start = async (i: number, peers: string[] = []): Promise<TestAgent> => {
    const n = ids[i]!
    const a = await startAgent({ label: n.label, stateDir: n.stateDir, ca: caFile, cert: n.cert, createMesh: i === 0, meshKey: i === 0 ? undefined : agents[0]!.agent.store.meshKey(), peers })
    agents.push(a)
    return a
  }
  const a0 = await start(0)
  const seed = [a0.agent.listenAddrs()[0]!]
  const [a1, a2] = [await start(1, seed), await start(2, seed)]
  const a3 = await start(3, seed)
  const all = [a0, a1, a2, a3]
  await waitFor('4 certified members everywhere', async () => (await Promise.all(all.map(info))).every(i => i.peers.filter(p => p.status === 'alive').length === 3), 20_000)
  assert.ok((await info(a0)).cert?.serial !== undefined)
  // a2 goes down; a3 is revoked through a0's control socket
  await a2.agent.stop()
  const victim = ids[3]!.nodeId
  const t0 = Date.now()
  const res = await callControl(a0.agent.controlPath, { cmd: 'revoke', revocation: revocationOf(victim) }) as { nodeId: string, name: string, fresh: boolean }
  assert.deepEqual(res, { nodeId: victim, name: 'c3', fresh: true })
  const ms = await waitFor('c3 gone from c0 and c1 (table and WireGuard)', async () => {
    for (const a of [a0, a1]) {
      if ((await info(a)).peers.some(p => p.nodeId === victim)) return false
      const wg = a.runner.interfaces.get(a.iface)!
      if ([...wg.peers.values()].length !== 2) return false
    }
    return true
  }, 10_000)
  console.log(`# revoked node gone from the live members in ${ms} ms (${Date.now() - t0} ms from the control call)`)
  await waitFor('the revoked agent learns it and stops itself', async () => { await a3.agent.stoppedPromise(); return existsSync(join(ids[3]!.stateDir, 'revocations.json')) }, 5000)
  assert.ok(existsSync(join(ids[0]!.stateDir, 'revocations.json')), 'kept in the state dir')
  // the node that was down learns it by sync when it comes back, and refuses the revoked node
  const b2 = await startAgent({ label: 'c2', stateDir: ids[2]!.stateDir, ca: caFile, cert: ids[2]!.cert, peers: seed })
  agents.push(b2)
  await waitFor('c2 back, without c3', async () => {
    const i = await info(b2)
    return i.cert?.revocations === 1 && !i.peers.some(p => p.nodeId === victim) && i.peers.filter(p => p.status === 'alive').length === 2
  }, 20_000)
  // restarted with its old certificate: an honest agent refuses (it kept the revocation) …
  await a3.agent.stoppedPromise()
  await assert.rejects(startAgent({ label: 'c3', stateDir: ids[3]!.stateDir, ca: caFile, cert: ids[3]!.cert, peers: seed }), /was revoked by the mesh CA/)
  // … one that dropped it learns it again from the first member it syncs with, and stops …
  rmSync(join(ids[3]!.stateDir, 'revocations.json'))
  const back = await startAgent({ label: 'c3', stateDir: ids[3]!.stateDir, ca: caFile, cert: ids[3]!.cert, peers: seed })
  agents.push(back)
  await waitFor('the restarted revoked agent stops itself', async () => { await back.agent.stoppedPromise(); return true }, 15_000)
  // … and its records, even newer ones (a higher seq, its own key, its valid certificate),
  // are refused everywhere and counted as `revoked`
  const rogue = await startRogue(a0.agent.store.meshKey()!)
  try {
    const signer = createSigner(new StateStore(ids[3]!.stateDir).nodeSeed())
    const { sealed } = sealedRecord(a0.agent.store.meshKey()!, signer, { name: 'c3', seq: Date.now() * 10, cert: readFileSync(ids[3]!.cert, 'utf8').trim() })
    const live = [a0, a1, b2]
    const before = await Promise.all(live.map(async a => (await info(a)).rejected.revoked ?? 0))
    await rogue.push([sealed], live.map(a => a.agent))
    // (a responder takes what it received when its end of the exchange finishes)
    await waitFor('every member counts the newer record as revoked', async () =>
      (await Promise.all(live.map(info))).every((i, k) => (i.rejected.revoked ?? 0) > before[k]!), 5000)
    for (const i of await Promise.all(live.map(info))) assert.ok(!i.peers.some(p => p.nodeId === victim), `${i.name} does not hold c3`)
    for (const a of live) assert.equal(a.runner.interfaces.get(a.iface)!.peers.size, 2)
    // a revocation of a live member signed by another CA is refused and counted; nobody leaves
    const forged = signRevocation(new Uint8Array(randomBytes(32)), { v: 1, ca: CA.fingerprint, nodeId: ids[1]!.nodeId, issuedAt: Date.now(), until: Date.now() + DAY })
    await rogue.push([seal(a0.agent.store.meshKey()!, signer, revocationMessage(forged), new Uint8Array(randomBytes(24)))], live.map(a => a.agent))
    await waitFor('every member counts the forged revocation', async () =>
      (await Promise.all(live.map(info))).every(i => (i.rejected['revocation-invalid'] ?? 0) > 0), 5000)
    for (const i of await Promise.all(live.map(info))) assert.equal(i.cert?.revocations, 1)
    assert.ok((await info(a0)).peers.some(p => p.nodeId === ids[1]!.nodeId && p.status === 'alive'), 'c1 stays')
  } finally {
    await rogue.stop()
  }
})

test('certificate mode: a node advertises only the routes its certificate grants; others\' records with ungranted routes are refused and counted', async () => {
  const R = '203.0.113.224/28'
  const gw = certified('rgw', { roles: ['gateway'], routes: [R] })
  // its own start refuses a route outside the grant, saying what to ask the CA for
  await assert.rejects(startAgent({ label: 'rgw', stateDir: gw.stateDir, createMesh: true, ca: caFile, cert: gw.cert, advertiseRoutes: ['198.51.100.0/24'] }),
    /--advertise-route 198\.51\.100\.0\/24: not granted by this node's certificate .* \(it grants: 203\.0\.113\.224\/28\); have the CA sign one with --route 198\.51\.100\.0\/24/)
  // a subnet inside the grant is fine
  const g = await startAgent({ label: 'rgw', stateDir: gw.stateDir, createMesh: true, ca: caFile, cert: gw.cert, advertiseRoutes: ['203.0.113.232/29'], routeGroup: 'lab' })
  agents.push(g)
  const cl = certified('rclient')
  const client = await startAgent({ label: 'rclient', stateDir: cl.stateDir, meshKey: g.agent.store.meshKey()!, ca: caFile, cert: cl.cert, peers: [g.agent.listenAddrs()[0]!] })
  agents.push(client)
  await waitFor('the client routes the granted subnet through rgw', () =>
    client.runner.interfaces.get(client.iface)?.peers.get(g.agent.record.wgPublicKey)?.allowedIps.includes('203.0.113.232/29') === true, 15_000)
  // hostile members with valid certificates: one without the gateway role claims a subnet, one
  // with a grant claims the default route (an exit it was not granted)
  const rogue = await startRogue(g.agent.store.meshKey()!)
  try {
    const plain = certified('rplain')
    const narrow = certified('rnarrow', { roles: ['gateway'], routes: ['198.51.100.0/24'] })
    const records = [
      sealedRecord(g.agent.store.meshKey()!, createSigner(new StateStore(plain.stateDir).nodeSeed()), {
        name: 'rplain', cert: readFileSync(plain.cert, 'utf8').trim(), routes: ['192.0.2.0/24'], gw: { group: 'evil', prio: 1000 }
      }).sealed,
      sealedRecord(g.agent.store.meshKey()!, createSigner(new StateStore(narrow.stateDir).nodeSeed()), {
        name: 'rnarrow', cert: readFileSync(narrow.cert, 'utf8').trim(), routes: ['0.0.0.0/0'], gw: { group: 'lab', prio: 1000, since: 1 }
      }).sealed
    ]
    await rogue.push(records, [client.agent])
    await waitFor('the client holds both hostile members', () => ['rplain', 'rnarrow'].every(n => client.agent.members.active().some(m => m.record.name === n)), 5000)
    await waitFor('both refusals counted', async () => /wgmesh_routes_rejected_total\{group="evil"\} 1\n[^]*wgmesh_routes_rejected_total\{group="lab"\} 1|wgmesh_routes_rejected_total\{group="lab"\} 1\n[^]*wgmesh_routes_rejected_total\{group="evil"\} 1/.test(await client.agent.metrics.registry.metrics()), 5000)
    const groups = (await info(client)).groups ?? []
    assert.deepEqual(groups.map(x => `${x.group}:${x.active?.name ?? '-'}:${x.routes.join(',')}`), ['lab:rgw:203.0.113.232/29'], 'only the granted route, through rgw')
    const peers = client.runner.interfaces.get(client.iface)!.peers
    for (const p of peers.values()) assert.ok(!p.allowedIps.includes('192.0.2.0/24') && !p.allowedIps.includes('0.0.0.0/0'), `no ungranted route in AllowedIPs: ${p.allowedIps.join(',')}`)
  } finally {
    await rogue.stop()
  }
})
