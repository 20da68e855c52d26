import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Membership } from '../src/membership.js'
import { planWireGuardState } from '../src/planner.js'
import type { NodeRecord } from '../src/types.js'
import { T0, recordOf, sealRecord, settings, testNode, ula } from './fixtures.js'

test('the plan has one peer per live or dead member, none for self, left or conflicted', () => {
  const self = testNode('self')
  const t = new Membership({ selfId: self.signer.nodeId, settings, ula })
  const selfRec = recordOf(self, { wgPort: 51999 })
  t.accept(selfRec, sealRecord(self, selfRec), T0, 'self')
  const [a, b, c] = ['a', 'b', 'c'].map(testNode) as [ReturnType<typeof testNode>, ReturnType<typeof testNode>, ReturnType<typeof testNode>]
  const overrides: Array<[ReturnType<typeof testNode>, Partial<NodeRecord>]> = [[a, { endpoints: ['198.18.1.2:51820', '192.0.2.2:51820'] }], [b, {}], [c, {}]]
  for (const [n, over] of overrides) {
    const r = recordOf(n, over)
    t.accept(r, sealRecord(n, r), T0, 'gossip')
  }
  const leave = recordOf(c, { seq: 2, leaving: true })
  t.accept(leave, sealRecord(c, leave), T0, 'gossip')
  for (const n of [a, b]) t.declareDead(n.signer.nodeId, 1) // a and b are dead now: they must stay configured
  assert.equal(t.get(a.signer.nodeId)?.status, 'dead')

  const plan = planWireGuardState(t, {
    interface: 'wgm0', privateKeyFile: '/state/wg.key', mtu: 1420, keepaliveS: 25, cidr4: settings.cidr4, ula, self: selfRec
  })
  assert.equal(plan.listenPort, 51999)
  assert.deepEqual(plan.addresses, [`${selfRec.ipv4}/16`, `${selfRec.ipv6}/48`])
  const expected = [a, b].map(n => {
    const r = recordOf(n)
    return {
      publicKey: n.wgPublicKey,
      allowedIps: [`${r.ipv4}/32`, `${r.ipv6}/128`].sort(),
      endpoint: n === a ? '198.18.1.2:51820' : '198.18.1.1:51820',
      persistentKeepalive: 25
    }
  }).sort((x, y) => (x.publicKey < y.publicKey ? -1 : 1))
  assert.deepEqual(plan.peers, expected)
})
