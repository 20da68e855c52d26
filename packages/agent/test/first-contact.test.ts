// First contact (path-manager.ts, FIRST_CONTACT_*): a peer in WireGuard that never completed a
// handshake gets its entry re-created a few times early on, instead of waiting out WireGuard's
// 5 s REKEY_TIMEOUT; the configurator's planner turns the kick into remove + add. Fake clock.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Membership, pathPolicy } from '@wgmesh/core'
import { planWireGuard, type Dump, type DesiredWireGuard } from '@wgmesh/wireguard'
import { FIRST_CONTACT_AFTER_MS, FIRST_CONTACT_EVERY_MS, FIRST_CONTACT_KICKS, PathManager } from '../src/path-manager.js'
import { T0, recordOf, sealRecord, settings, testNode, ula } from '../../core/test/fixtures.js'

function rig (): { step: (now: number, handshake: number | undefined, rx?: number) => { changed: boolean, kick: number | undefined } } {
  const [me, peer] = [testNode('fc-me'), testNode('fc-peer')]
  const table = new Membership({ selfId: me.signer.nodeId, settings, ula })
  const self = recordOf(me, { nat: 'public', endpoints: ['198.18.1.1:51820'] })
  table.accept(self, sealRecord(me, self), T0, 'self')
  const rec = recordOf(peer, { nat: 'public', endpoints: ['198.18.1.2:51820'] })
  table.accept(rec, sealRecord(peer, rec), T0, 'gossip')
  const pm = new PathManager(pathPolicy(25))
  return {
    step: (now, handshake, rx = 0) => {
      const dump: Dump = {
        interface: { listenPort: 51820 },
        peers: handshake === undefined ? [] : [{ publicKey: rec.wgPublicKey, endpoint: '198.18.1.2:51820', allowedIps: [], latestHandshake: handshake, transferRx: rx, transferTx: 0 }]
      }
      const changed = pm.step(now, table, self, 'public', dump, [], new Map())
      return { changed, kick: pm.current.get(rec.nodeId)?.kick }
    }
  }
}

test('a peer with no handshake is re-created from FIRST_CONTACT_AFTER_MS after it appeared in WireGuard, every FIRST_CONTACT_EVERY_MS, at most FIRST_CONTACT_KICKS times', () => {
  const { step } = rig()
  assert.equal(step(T0, undefined).kick, undefined, 'not in WireGuard yet: nothing to kick')
  const added = T0 + 300
  assert.equal(step(added, 0).kick, undefined, 'just added')
  assert.equal(step(added + FIRST_CONTACT_AFTER_MS - 1, 0).kick, undefined, 'a handshake may still be on its way')
  const first = step(added + FIRST_CONTACT_AFTER_MS, 0)
  assert.deepEqual(first, { changed: true, kick: 1 }, 'no handshake after the delay: re-create (a route change, so an apply)')
  assert.deepEqual(step(added + FIRST_CONTACT_AFTER_MS + FIRST_CONTACT_EVERY_MS - 1, 0), { changed: false, kick: 1 })
  let t = added + FIRST_CONTACT_AFTER_MS
  for (let k = 2; k <= FIRST_CONTACT_KICKS; k++) {
    t += FIRST_CONTACT_EVERY_MS
    assert.equal(step(t, 0).kick, k)
  }
  assert.deepEqual(step(t + 10 * FIRST_CONTACT_EVERY_MS, 0), { changed: false, kick: FIRST_CONTACT_KICKS }, 'then WireGuard\'s own retries')
})

test('a peer whose handshake completed in time is never re-created', () => {
  const { step } = rig()
  step(T0, 0)
  const hs = Math.floor((T0 + 200) / 1000)
  for (let t = T0 + 250; t < T0 + 10_000; t += 250) assert.equal(step(t, hs).kick, undefined, `at +${t - T0} ms`)
  // bytes came from it (its handshake time not seen yet): contact made, no kick either
  const { step: step2 } = rig()
  for (let t = T0; t < T0 + 10_000; t += 250) assert.equal(step2(t, 0, 148).kick, undefined, `rx: at +${t - T0} ms`)
})

test('the planner turns a new kick of a peer without a handshake into remove + add, and leaves a peer with one alone', () => {
  const pk = 'x'.repeat(43) + '='
  const desired = (kick?: number): DesiredWireGuard => ({
    interface: 'wgm0', privateKeyFile: '/k', listenPort: 51820, addresses: [], mtu: 1420,
    peers: [{ publicKey: pk, endpoint: '198.18.1.2:51820', allowedIps: ['100.96.0.2/32'], ...(kick === undefined ? {} : { kick }) }]
  })
  const current = (latestHandshake: number): Parameters<typeof planWireGuard>[0] => ({
    dump: { interface: { privateKey: 'p', listenPort: 51820 }, peers: [{ publicKey: pk, endpoint: '198.18.1.2:51820', allowedIps: ['100.96.0.2/32'], latestHandshake, transferRx: 0, transferTx: 0 }] },
    addresses: [],
    link: { name: 'wgm0', flags: ['UP'], mtu: 1420, up: true, operState: 'UNKNOWN' }
  })
  assert.deepEqual(planWireGuard(current(0), desired(1), desired()), [
    ['wg', 'set', 'wgm0', 'peer', pk, 'remove'],
    ['wg', 'set', 'wgm0', 'peer', pk, 'endpoint', '198.18.1.2:51820', 'allowed-ips', '100.96.0.2/32']
  ])
  assert.deepEqual(planWireGuard(current(0), desired(1), desired(1)), [], 'the same kick again: nothing')
  assert.deepEqual(planWireGuard(current(1_800_000_000), desired(2), desired(1)), [], 'a handshake came: the kick is moot')
})
