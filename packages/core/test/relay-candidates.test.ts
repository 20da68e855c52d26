import { test } from 'node:test'
import assert from 'node:assert/strict'
import { chooseRelay } from '../src/relay.js'
import { indexSeenClaims, peerCandidates, shortId } from '../src/candidates.js'
import { parseCidr } from '../src/ip.js'
import { Membership } from '../src/membership.js'
import { planWireGuardState } from '../src/planner.js'
import { T0, recordOf, sealRecord, settings, testNode, ula } from './fixtures.js'

test('both ends of a pair choose the same relay; non-public or unwilling nodes never relay', () => {
  const [a, b, r1, r2, r3, cone] = ['a', 'b', 'r1', 'r2', 'r3', 'cone'].map(testNode)
  const relays = [recordOf(r1!, { relay: true, nat: 'public' }), recordOf(r2!, { relay: true, nat: 'public' }), recordOf(r3!, { nat: 'public' }), recordOf(cone!, { relay: true, nat: 'cone' })]
  const x = chooseRelay(a!.signer.nodeId, b!.signer.nodeId, relays)
  const y = chooseRelay(b!.signer.nodeId, a!.signer.nodeId, [...relays].reverse())
  assert.ok(x !== undefined)
  assert.equal(x.nodeId, y?.nodeId)
  assert.ok([r1!.signer.nodeId, r2!.signer.nodeId].includes(x.nodeId))
  assert.equal(chooseRelay(a!.signer.nodeId, b!.signer.nodeId, relays.slice(2)), undefined)
})

test('candidates: LAN first, then what the peer advertises, then what others observed', () => {
  const [p, o] = [testNode('p'), testNode('o')]
  const peer = recordOf(p, { endpoints: ['198.18.2.5:51820', '192.0.2.18:51820'] })
  const observer = recordOf(o, { seen: { [shortId(peer.nodeId)]: '198.18.2.5:40001' } })
  const c = peerCandidates(peer, { localSubnets: [parseCidr('192.0.2.16/28')], seen: indexSeenClaims([peer, observer]) })
  assert.deepEqual(c, ['192.0.2.18:51820', '198.18.2.5:51820', '198.18.2.5:40001'])
  const far = peerCandidates(peer, { localSubnets: [parseCidr('203.0.113.0/28')], seen: indexSeenClaims([peer]), lanDiscovered: ['192.0.2.18:51820'] })
  assert.deepEqual(far, ['192.0.2.18:51820', '198.18.2.5:51820'])
})

test('planner: a relayed peer keeps its own addresses; only its endpoint is the relay\'s port for the pair', () => {
  const self = testNode('self')
  const t = new Membership({ selfId: self.signer.nodeId, settings, ula })
  const selfRec = recordOf(self)
  t.accept(selfRec, sealRecord(self, selfRec), T0, 'self')
  const [peer, relay] = [testNode('peer'), testNode('relay')]
  const pr = recordOf(peer)
  const rr = recordOf(relay, { relay: true, nat: 'public' })
  for (const [n, r] of [[peer, pr], [relay, rr]] as const) t.accept(r, sealRecord(n, r), T0, 'gossip')
  const routes = new Map([[peer.signer.nodeId, { endpoint: '198.18.1.1:40001', keepaliveS: 1, via: relay.signer.nodeId }], [relay.signer.nodeId, { endpoint: '198.18.1.1:51820', keepaliveS: 5 }]])
  const plan = planWireGuardState(t, { interface: 'wg', privateKeyFile: '/k', mtu: 1420, keepaliveS: 25, cidr4: settings.cidr4, ula, self: selfRec, routes })
  const p = plan.peers.find(x => x.publicKey === peer.wgPublicKey)!
  const r = plan.peers.find(x => x.publicKey === relay.wgPublicKey)!
  assert.deepEqual(p, { publicKey: peer.wgPublicKey, allowedIps: [`${pr.ipv4}/32`, `${pr.ipv6}/128`].sort(), endpoint: '198.18.1.1:40001', persistentKeepalive: 1 })
  assert.deepEqual(r.allowedIps, [`${rr.ipv4}/32`, `${rr.ipv6}/128`].sort(), 'the relay never holds the pair\'s addresses (it would decrypt their traffic)')
})
