/**
 * Gossip over IPv6 (issue 11), in process on ::1: an agent listening on an IPv6 address is
 * joined through a `[v6]:port` seed, and both advertise their IPv6 gossip address in their
 * records (the listener was an /ip4/ multiaddr only, and `--gossip-host ::` died with exit 70).
 */
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { cleanupDirs, startAgent, waitFor, type TestAgent } from './harness.js'

const agents: TestAgent[] = []
after(async () => {
  await Promise.allSettled(agents.map(async a => await a.agent.stop()))
  cleanupDirs()
})

test('two agents on ::1 join through a [::1]:port seed and advertise /ip6/ gossip addresses', async () => {
  const a = await startAgent({ label: 'v6a', createMesh: true, gossipHost: '::1' })
  agents.push(a)
  const listen = a.agent.listenAddrs()
  assert.ok(listen.length > 0 && listen.every(x => x.startsWith('/ip6/::1/tcp/')), listen.join(' '))
  const port = /\/tcp\/([0-9]+)/.exec(listen[0]!)![1]!
  const b = await startAgent({ label: 'v6b', meshKey: a.agent.store.meshKey()!, gossipHost: '::1', peers: [`[::1]:${port}`] })
  agents.push(b)
  await waitFor('each holds the other', () => a.agent.members.get(b.agent.nodeId) !== undefined && b.agent.members.get(a.agent.nodeId) !== undefined, 15_000)
  const rb = a.agent.members.get(b.agent.nodeId)!.record
  assert.ok(rb.gossipAddrs.length > 0 && rb.gossipAddrs.every(x => x.startsWith('/ip6/::1/tcp/')), rb.gossipAddrs.join(' '))
  assert.deepEqual(b.agent.members.get(a.agent.nodeId)!.record.gossipAddrs, a.agent.record.gossipAddrs)
})
