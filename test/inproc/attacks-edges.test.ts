/**
 * Attacks on an agent's edges, performed against real agents on 127.0.0.1 (127.0.0.2 plays
 * another host), each shown to fail:
 *  - O1: an outsider without the mesh key holds idle TCP connections to the gossip port, which
 *    used to fill libp2p's pending-connection slots before pnet was checked: a joiner must
 *    still join;
 *  - L1: a state directory owned by another user is refused before anything is read from it;
 *  - L2: a state.json naming an address outside the mesh (8.8.8.8) is set aside; the agent
 *    starts cleanly, with its keys and an address of the mesh.
 * The LAN-beacon, STUN, NAT-PMP and child-environment attacks (O2–O4, L3) are tested at the
 * package level: packages/agent/test/lan-discovery.test.ts, packages/nat/test/stun-attacks.test.ts,
 * packages/nat/test/pmp-attacks.test.ts, packages/wireguard/test/command-runner.test.ts.
 */
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import { chownSync, existsSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { cidrContainsText, meshSettings } from '@wgmesh/core'
import { StateStore } from '@wgmesh/agent'
import { MAX_PENDING_INBOUND_PER_ADDRESS } from '../../packages/agent/src/transport/index.js'
import { cleanupDirs, startAgent, tempDir, waitFor, type TestAgent } from './harness.js'

const agents: TestAgent[] = []
after(async () => {
  // every agent is stopped even if one stop fails; the failures are reported once all are down
  const failed: string[] = []
  for (const a of agents.splice(0)) await a.agent.stop().catch((err: Error) => { failed.push(err.message) })
  cleanupDirs()
  assert.deepEqual(failed, [], 'stopping the agents')
})
const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

/**
 * Keep `count` idle TCP connections from `localAddress` to host:port: nothing is ever sent
 * (no pnet nonce); each one closed by the other end is reopened 100 ms later.
 */
function idleConnections (host: string, port: number, localAddress: string, count: number): { open: () => number, opened: () => number, stop: () => void } {
  const live = new Set<net.Socket>()
  let opened = 0
  let stopped = false
  const one = (): void => {
    if (stopped) return
    const s = net.connect({ host, port, localAddress })
    s.on('error', () => {})
    s.on('connect', () => { opened++; live.add(s) })
    s.on('close', () => { live.delete(s); setTimeout(one, 100).unref() })
  }
  for (let i = 0; i < count; i++) one()
  return {
    open: () => live.size,
    opened: () => opened,
    stop: () => { stopped = true; for (const s of live) s.destroy() }
  }
}

test('O1: 40 idle TCP connections from an outsider without the mesh key do not lock a joiner out', async () => {
  const seed = await startAgent({ label: 'o1-seed', createMesh: true })
  agents.push(seed)
  const addr = seed.agent.listenAddrs()[0]!
  const port = Number(/\/tcp\/(\d+)/.exec(addr)![1])
  const attack = idleConnections('127.0.0.1', port, '127.0.0.2', 40)
  try {
    // long enough to fill the old 32 pending slots (libp2p admits 10 new connections per second per host)
    await sleep(5000)
    const held = attack.open()
    const joiner = await startAgent({ label: 'o1-joiner', meshKey: seed.agent.store.meshKey()!, peers: [addr] })
    agents.push(joiner)
    const ms = await waitFor('the joiner has the seed in its table and the seed has the joiner', () =>
      joiner.agent.members.get(seed.agent.nodeId) !== undefined && seed.agent.members.get(joiner.agent.nodeId) !== undefined, 10_000)
    console.log(`  joined in ${ms} ms while the outsider held ${held} idle TCP connections (${attack.opened()} opened in all; at most ${MAX_PENDING_INBOUND_PER_ADDRESS} pending per address)`)
  } finally {
    attack.stop()
  }
})

test('L1: an agent refuses a state directory owned by another user, saying what to run', { skip: process.getuid?.() !== 0 ? 'needs root (to chown)' : false }, async () => {
  const dir = tempDir('l1')
  chownSync(dir, 65534, 65534)
  await assert.rejects(startAgent({ label: 'l1', createMesh: true, stateDir: dir }),
    (e: Error) => e.name === 'StateError' && e.message.includes('owned by uid 65534') && e.message.includes(`chown root: ${dir} && chmod 700 ${dir}`))
  assert.deepEqual(readdirSync(dir), [], 'nothing was written into it')
})

test('L2: a state.json naming 8.8.8.8 is set aside; the agent starts with its keys and an address of the mesh', async () => {
  const first = await startAgent({ label: 'l2', createMesh: true })
  const nodeId = first.agent.nodeId
  const wgKey = first.agent.record.wgPublicKey
  await first.agent.stop()
  const dir = first.dir
  const { cidr4 } = meshSettings({})
  const state: Record<string, unknown> = { ...new StateStore(dir).load() }
  assert.equal(state.cidr4, '100.96.0.0/16')
  writeFileSync(join(dir, 'state.json'), JSON.stringify({ ...state, ipv4: '8.8.8.8' }), { mode: 0o600 })
  const again = await startAgent({ label: 'l2', stateDir: dir })
  agents.push(again)
  assert.equal(again.agent.nodeId, nodeId, 'the node kept its identity')
  assert.equal(again.agent.record.wgPublicKey, wgKey, 'the node kept its WireGuard key')
  assert.notEqual(again.agent.record.ipv4, '8.8.8.8')
  assert.ok(cidrContainsText(cidr4, again.agent.record.ipv4), `${again.agent.record.ipv4} is not in the mesh range`)
  const aside = readdirSync(dir).filter(f => f.startsWith('state.json.bad-'))
  assert.equal(aside.length, 1, 'the bad state file was set aside for the operator')
  assert.ok(existsSync(join(dir, 'state.json')))
})
