/** Drift: what someone changes on the interface behind the agent's back is put back, without any membership change. */
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { cleanupDirs, startAgent, waitFor, type TestAgent } from './harness.js'

const agents: TestAgent[] = []
after(async () => {
  for (const a of agents) await a.agent.stop()
  cleanupDirs()
})

test('a peer removed from the interface behind the agent\'s back is re-added within the reconcile period', async () => {
  const a = await startAgent({ label: 'drift-a', createMesh: true, reconcileMs: 500 })
  agents.push(a)
  const b = await startAgent({ label: 'drift-b', meshKey: a.agent.store.meshKey()!, peers: [a.agent.listenAddrs()[0]!] })
  agents.push(b)
  const key = b.agent.record.wgPublicKey
  const peers = (): Map<string, unknown> => a.runner.interfaces.get(a.iface)!.peers
  await waitFor('a configures b', () => peers().has(key))
  // wait for a quiet table (the first seconds bring new records: each one re-plans anyway)
  const view = (): string => a.agent.members.all().map(m => `${m.record.nodeId}:${m.record.seq}:${m.status}`).join(' ')
  let last = view()
  let since = Date.now()
  await waitFor('a quiet table for 2 s', () => {
    if (view() !== last) { last = view(); since = Date.now() }
    return Date.now() - since >= 2000
  }, 20_000, 50)
  const version = view()
  peers().delete(key) // `wg set … peer … remove` by someone else
  // within the period (plus an apply), not at the next punching step (5 s) or membership change
  const ms = await waitFor('the agent puts b back', () => peers().has(key), 1500)
  console.log(`# re-added ${ms} ms after the removal (reconcile every 500 ms)`)
  assert.equal(view(), version, 'no membership change triggered it')
})
