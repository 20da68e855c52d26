/** `wgmesh info` text: the gateway groups under the peer table (issue 9): group, routes, active and since when, members by rank; an exit group without a live gateway says the default route is unchanged. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { formatInfo, type AgentInfo } from '@wgmesh/agent'

const base: AgentInfo = {
  schema: 1, version: 'test', name: 'client', nodeId: 'c'.repeat(43), interface: 'wgmesh0', ipv4: '100.96.0.9', ipv6: 'fd00::9',
  wgPublicKey: 'k'.repeat(44), listenPort: 51820, endpoints: [], gossipAddrs: [], meshCidr4: '100.96.0.0/16', meshUla: 'fd00::/48',
  nat: 'public', relay: false, peers: [], rejected: {}
}

test('groups: active gateway, its age, members with priorities; the exit group is marked', () => {
  const now = Date.now()
  const text = formatInfo({
    ...base,
    exitNode: 'exit',
    groups: [
      { group: 'exit', routes: ['0.0.0.0/0'], active: { nodeId: 'e', name: 'edge1', since: now - 90_000 }, members: [{ nodeId: 'e', name: 'edge1', priority: 100, claims: true }] },
      {
        group: 'office', routes: ['10.20.0.0/24'], active: { nodeId: 'b', name: 'gw2', since: now - 5000 },
        members: [{ nodeId: 'b', name: 'gw2', priority: 200, claims: true }, { nodeId: 'c', name: 'gw3', priority: 100, claims: false }]
      }
    ]
  })
  const lines = text.split('\n')
  const h = lines.findIndex(l => l.startsWith('GROUP'))
  assert.ok(h > 0, text)
  assert.match(lines[h]!, /^GROUP\s+ROUTES\s+ACTIVE\s+SINCE\s+MEMBERS$/)
  assert.match(lines[h + 1]!, /^exit \(exit\)\s+0\.0\.0\.0\/0\s+edge1\s+1m\S*\s+edge1\(100\)$/)
  assert.match(lines[h + 2]!, /^office\s+10\.20\.0\.0\/24\s+gw2\s+5s\s+gw2\(200\) gw3\(100\)$/)
})

test('an exit group with no live gateway is listed, saying the default route is unchanged; no groups, no table', () => {
  const text = formatInfo({ ...base, exitNode: 'exit', groups: [] })
  assert.match(text, /^exit \(exit\)\s+-\s+-\s+-\s+no live gateway: default route unchanged$/m)
  assert.doesNotMatch(formatInfo(base), /GROUP/)
})
