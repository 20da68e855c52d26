import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import type { Logger } from '@wgmesh/agent'
import { cleanupDirs, startAgent, viewOf, waitFor, type TestAgent } from './harness.js'

const agents: TestAgent[] = []
after(async () => {
  await Promise.allSettled(agents.map(async a => await a.agent.stop()))
  cleanupDirs()
})

/** The 10-agent mesh, formed once (by the first test that needs it, so a later test does not
 *  depend on an earlier one passing). */
let formed: Promise<number> | undefined
async function mesh (): Promise<number> {
  formed ??= (async () => {
    const first = await startAgent({ label: 'n0', createMesh: true })
    agents.push(first)
    const meshKey = first.agent.store.meshKey()!
    // each joins a different existing node (the previous one)
    for (let i = 1; i < 10; i++) {
      const prev = agents[i - 1]!.agent
      agents.push(await startAgent({ label: `n${i}`, meshKey, peers: [prev.listenAddrs()[0]!] }))
    }
    return await waitFor('identical tables of 10 alive members', () => {
      const views = agents.slice(0, 10).map(a => viewOf(a.agent))
      return views.every(v => v === views[0]) && views[0]!.split('\n').length === 10 && !views[0]!.includes(' dead')
    }, 60_000)
  })()
  return await formed
}

test('10 agents on 127.0.0.1 converge to identical tables and full WireGuard peer sets', async () => {
  const t0 = Date.now()
  const ms = await mesh()
  const ten = agents.slice(0, 10)
  // the fake WireGuard host of every agent has the other 9 as peers with their overlay /32 and /128
  await waitFor('WireGuard state applied everywhere', () => ten.every(a => a.runner.interfaces.get(a.iface)?.peers.size === 9), 30_000)
  for (const a of ten) {
    const iface = a.runner.interfaces.get(a.iface)!
    for (const m of a.agent.members.active()) {
      if (m.record.nodeId === a.agent.nodeId) {
        assert.ok(iface.addresses.includes(`${m.record.ipv4}/16`), `${a.iface} has its own address`)
        continue
      }
      const p = iface.peers.get(m.record.wgPublicKey)
      assert.ok(p !== undefined, `peer ${m.record.name} configured on ${a.iface}`)
      assert.deepEqual([...p.allowedIps].sort(), [`${m.record.ipv4}/32`, `${m.record.ipv6}/128`].sort())
    }
  }
  const ips = ten.map(a => a.agent.record.ipv4)
  assert.equal(new Set(ips).size, 10, 'no duplicate overlay address')
  console.log(`# converged ${ms} ms after the 10th start (${Date.now() - t0} ms from the first)`)
})

test('a node with the wrong mesh key cannot connect or be seen', async () => {
  await mesh()
  const seed = agents[0]!.agent.listenAddrs()[0]!
  // the outsider's failed dials to its seed are its log lines that name the seed and an error
  const failures: string[] = []
  const note = (msg: string, meta?: Record<string, unknown>): void => {
    if (meta !== undefined && typeof meta.error === 'string' && Object.values(meta).includes(seed)) failures.push(`${msg}: ${meta.error}`)
  }
  const logger: Logger = { debug: note, info: note, warn: note, error: note }
  const outsider = await startAgent({ label: 'outsider', createMesh: true, peers: [seed], logger })
  agents.push(outsider)
  // judged only after the outsider really tried: two dials to the seed have failed
  await waitFor('two failed dials of the outsider to its seed', () => failures.length >= 2, 30_000)
  console.log(`# outsider: ${failures.length} failed dials, first: ${failures[0]}`)
  assert.equal(outsider.agent.members.active().length, 1, 'the outsider sees only itself')
  for (const a of agents.slice(0, 10)) {
    assert.ok(!a.agent.members.all().some(m => m.record.nodeId === outsider.agent.nodeId), 'no member sees the outsider')
  }
  const info = await outsider.agent.info()
  assert.equal(info.peers.length, 0)
  assert.equal(outsider.runner.interfaces.get(outsider.iface)?.peers.size, 0)
})

test('leave removes the node from every other node', async () => {
  await mesh()
  const leaver = agents[5]!
  const id = leaver.agent.nodeId
  await leaver.agent.leave()
  const ms = await waitFor('departure seen everywhere', () => agents.slice(0, 10).filter(a => a !== leaver)
    .every(a => a.agent.members.get(id)?.status === 'left' && a.runner.interfaces.get(a.iface)?.peers.size === 8), 30_000)
  assert.ok(leaver.runner.interfaces.get(leaver.iface) === undefined, 'the leaver removed its interface')
  console.log(`# leave seen everywhere in ${ms} ms`)
})

test('backend existing: the interface\'s own key is advertised; a missing interface fails the start', async () => {
  const { StateStore, Agent, silentLogger } = await import('@wgmesh/agent')
  const { FakeWireGuardRunner } = await import('@wgmesh/wireguard')
  const { tempDir } = await import('./harness.js')
  const runner = new FakeWireGuardRunner()
  const iface = runner.addInterface('wgexist0')
  const priv = runner.privateKeyFor('/etc/wireguard/other.key')
  iface.privateKey = priv
  const { wgPublicKeyFromPrivate } = await import('@wgmesh/core')
  iface.publicKey = wgPublicKeyFromPrivate(priv)
  const dir = tempDir('existing')
  const a = new Agent({ stateDir: dir, createMesh: true, backend: 'existing', interface: 'wgexist0', wgRunner: runner, gossipHost: '127.0.0.1', gossipPort: 0, logger: silentLogger })
  await a.start()
  try {
    assert.equal(a.record.wgPublicKey, iface.publicKey)
    assert.notEqual(a.record.wgPublicKey, wgPublicKeyFromPrivate(new StateStore(dir).wgPrivateKey()))
    assert.ok(iface.addresses.some(x => x.startsWith(a.record.ipv4)), 'addresses managed on the existing interface')
  } finally { await a.stop() }
  const missing = new Agent({ stateDir: tempDir('missing'), createMesh: true, backend: 'existing', interface: 'wgnone0', wgRunner: new FakeWireGuardRunner(), gossipHost: '127.0.0.1', gossipPort: 0, logger: silentLogger })
  await assert.rejects(missing.start(), (e: Error) => e.name === 'InvalidConfigError' && /interface wgnone0 does not exist/.test(e.message))
  await missing.stop()
})
