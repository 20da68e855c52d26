import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Membership, pathPolicy } from '@wgmesh/core'
import type { Dump } from '@wgmesh/wireguard'
import { PathManager, RELAY_RETRY_MS } from '../src/path-manager.js'
import { T0, recordOf, sealRecord, settings, testNode, ula } from '../../core/test/fixtures.js'

test('a relay that carries nothing for a pair is passed over; the pair moves to the next relay and keeps it while it carries', () => {
  const [me, peer, r1, r2] = ['me', 'peer', 'r1', 'r2'].map(testNode)
  const table = new Membership({ selfId: me!.signer.nodeId, settings, ula })
  const self = recordOf(me!, { nat: 'symmetric' })
  table.accept(self, sealRecord(me!, self), T0, 'self')
  const peerRec = recordOf(peer!, { nat: 'symmetric' })
  const relays = [recordOf(r1!, { nat: 'public', relay: true, endpoints: ['198.18.1.1:51820'] }), recordOf(r2!, { nat: 'public', relay: true, endpoints: ['198.18.1.2:51820'] })]
  for (const [n, r] of [[peer!, peerRec], [r1!, relays[0]!], [r2!, relays[1]!]] as const) table.accept(r, sealRecord(n, r), T0, 'gossip')
  const pm = new PathManager(pathPolicy(25))
  const ports = (relay: { nodeId: string, endpoints: string[] }): string => `${relay.endpoints[0]!.split(':')[0]!}:40000`
  const step = (now: number, dump?: Dump): { via?: string, path: string, endpoint?: string } => {
    pm.step(now, table, self, 'symmetric', dump, [], new Map(), (relay) => ports(relay))
    const route = pm.current.get(peerRec.nodeId)!
    return { via: route.via, path: pm.view(peerRec.nodeId)!.path, endpoint: route.endpoint }
  }
  const first = step(T0)
  assert.ok(first.via !== undefined, 'two symmetric ends: relayed at once')
  assert.equal(first.path, 'punching', 'not shown relayed before the relay carries anything')
  assert.equal(first.endpoint, ports(relays.find(r => r.nodeId === first.via)!), 'the peer entry points at the relay\'s port for our end')
  assert.equal(step(T0 + 5000).via, first.via, 'the relay gets its set-up time')
  const failed = step(T0 + 10_000)
  assert.equal(failed.via, first.via, 'judged at the end of the set-up time')
  const next = step(T0 + 10_500)
  assert.ok(next.via !== undefined && next.via !== first.via, 'the silent relay is passed over for the other one')
  // the second relay carries: the peer entry sits on its port and packets arrive
  const other = relays.find(r => r.nodeId === next.via)!
  const dump = (rx: number, at: number): Dump => ({
    interface: { listenPort: 51820 },
    peers: [{ publicKey: peerRec.wgPublicKey, endpoint: ports(other), allowedIps: [], latestHandshake: Math.floor(at / 1000), transferRx: rx, transferTx: 0 }]
  } as unknown as Dump)
  assert.equal(step(T0 + 11_000, dump(100, T0 + 11_000)).path, 'relay')
  assert.equal(step(T0 + 30_000, dump(200, T0 + 30_000)).via, next.via, 'a carrying relay stays')
  // both relays failed once: after the retry time the first is a candidate again
  const later = T0 + 11_000 + RELAY_RETRY_MS
  assert.equal(step(later, dump(300, later)).via, next.via, 'a working relay is not left for a recovered one')
})
