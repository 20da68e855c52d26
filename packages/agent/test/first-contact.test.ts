// First contact (path-manager.ts, FIRST_CONTACT_*): a peer in WireGuard that never completed a
// handshake gets its entry re-created a few times early on, instead of waiting out WireGuard's
// 5 s REKEY_TIMEOUT, on a schedule that differs between the pair's two ends (two re-created
// entries initiating at the same moment cross and cancel out again); the configurator's
// planner turns the kick into remove + add. Fake clock.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Membership, pathPolicy } from '@wgmesh/core'
import { planWireGuard, type Dump, type DesiredWireGuard } from '@wgmesh/wireguard'
import { FIRST_CONTACT_HIGHER, FIRST_CONTACT_KICKS, FIRST_CONTACT_LOWER, PathManager } from '../src/path-manager.js'
import { PairTimeline } from '../src/pair-timeline.js'
import { T0, recordOf, sealRecord, settings, testNode, ula } from '../../core/test/fixtures.js'

type Step = (now: number, handshake: number | undefined, rx?: number) => { changed: boolean, kick: number | undefined }

/** One end of the pair (a, b): its path manager, stepped with a dump of its entry for the other. */
function end (me: ReturnType<typeof testNode>, other: ReturnType<typeof testNode>, selfNat: 'public' | 'cone' = 'public'): { step: Step, lower: boolean } {
  const table = new Membership({ selfId: me.signer.nodeId, settings, ula })
  const self = recordOf(me, { nat: selfNat, endpoints: ['198.18.1.1:51820'] })
  table.accept(self, sealRecord(me, self), T0, 'self')
  const rec = recordOf(other, { nat: 'public', endpoints: ['198.18.1.2:51820'] })
  table.accept(rec, sealRecord(other, rec), T0, 'gossip')
  const pm = new PathManager(pathPolicy(25))
  return {
    lower: self.wgPublicKey < rec.wgPublicKey,
    step: (now, handshake, rx = 0) => {
      const dump: Dump = {
        interface: { listenPort: 51820 },
        peers: handshake === undefined ? [] : [{ publicKey: rec.wgPublicKey, endpoint: '198.18.1.2:51820', allowedIps: [], latestHandshake: handshake, transferRx: rx, transferTx: 0 }]
      }
      const changed = pm.step(now, table, self, selfNat, dump, [], new Map())
      return { changed, kick: pm.current.get(rec.nodeId)?.kick }
    }
  }
}

/** Both ends of one pair. */
function pair (): { lower: Step, higher: Step } {
  const [a, b] = [testNode('fc-a'), testNode('fc-b')]
  const ea = end(a, b)
  const eb = end(b, a)
  return ea.lower ? { lower: ea.step, higher: eb.step } : { lower: eb.step, higher: ea.step }
}

/** The times (from when the peer appeared in WireGuard) at which an end re-creates it, stepped every 250 ms. */
function kickTimes (step: Step, rx: number): number[] {
  step(T0, 0, rx)
  const out: number[] = []
  let last = 0
  for (let t = 0; t <= 12_000; t += 250) {
    const k = step(T0 + t, 0, rx).kick ?? 0
    if (k > last) out.push(t)
    last = k
  }
  return out
}

test('each end of a pair re-creates a peer with no handshake on its own schedule, at most FIRST_CONTACT_KICKS times; received handshake messages do not count as contact', () => {
  for (const rx of [0, 148 + 92]) {
    const { lower, higher } = pair()
    const l = FIRST_CONTACT_LOWER
    const h = FIRST_CONTACT_HIGHER
    assert.deepEqual(kickTimes(lower, rx), [l.afterMs, l.afterMs + l.everyMs, l.afterMs + 2 * l.everyMs], `lower key, rx ${rx}`)
    assert.deepEqual(kickTimes(higher, rx), [h.afterMs, h.afterMs + h.everyMs, h.afterMs + 2 * h.everyMs], `higher key, rx ${rx}`)
  }
  assert.equal(FIRST_CONTACT_KICKS, 3)
})

test('the two ends\' schedules meet at most once, whatever the offset between their adds (crossed initiations would cancel out again)', () => {
  const at = (s: { afterMs: number, everyMs: number }): number[] => Array.from({ length: FIRST_CONTACT_KICKS }, (_, i) => s.afterMs + i * s.everyMs)
  const lower = at(FIRST_CONTACT_LOWER)
  const higher = at(FIRST_CONTACT_HIGHER)
  // the two ends step their paths on their own 500 ms ticks: offsets come in steps of the tick
  for (let d = -5000; d <= 5000; d += 50) {
    const meets = higher.filter(t => lower.includes(t + d)).length
    assert.ok(meets <= 1, `offset ${d} ms: ${meets} simultaneous re-creations`)
  }
})

test('the first-contact machinery: a peer not yet in WireGuard is not kicked, nor one just added', () => {
  const { lower } = pair()
  assert.equal(lower(T0, undefined).kick, undefined, 'not in WireGuard yet: nothing to kick')
  const added = T0 + 300
  assert.equal(lower(added, 0).kick, undefined, 'just added')
  assert.equal(lower(added + FIRST_CONTACT_LOWER.afterMs - 1, 0).kick, undefined, 'a handshake may still be on its way')
  assert.deepEqual(lower(added + FIRST_CONTACT_LOWER.afterMs, 0), { changed: true, kick: 1 }, 'no handshake after the delay: re-create (a route change, so an apply)')
  assert.deepEqual(lower(added + FIRST_CONTACT_LOWER.afterMs + FIRST_CONTACT_LOWER.everyMs - 1, 0), { changed: false, kick: 1 })
})

test('a handshake message that just came puts the next re-creation off by a step (the handshake may be completing)', () => {
  const { lower } = pair()
  const { afterMs, everyMs } = FIRST_CONTACT_LOWER
  const kicks = (now: number, rx: number): number => lower(now, 0, rx).kick ?? 0
  assert.equal(kicks(T0, 0), 0, 'appeared in WireGuard')
  // an initiation comes in (148 bytes) just before the first try was due: we answered it
  assert.equal(kicks(T0 + afterMs, 148), 0, 'an answer of ours may be completing a handshake')
  assert.equal(kicks(T0 + 2 * afterMs - 1, 148), 0)
  assert.equal(kicks(T0 + 2 * afterMs, 148), 1, 'nothing more came: re-create')
  // the re-created entry's counters start at 0: no growth, the schedule goes on
  assert.equal(kicks(T0 + 2 * afterMs + everyMs, 0), 2)
})

test('a peer whose handshake completed in time is never re-created', () => {
  const { lower, higher } = pair()
  for (const step of [lower, higher]) {
    step(T0, 0)
    const hs = Math.floor((T0 + 200) / 1000)
    for (let t = T0 + 250; t < T0 + 10_000; t += 250) assert.equal(step(t, hs, 4096).kick, undefined, `at +${t - T0} ms`)
  }
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

test('the pair timeline logs each first-contact retry once, as it is asked for', () => {
  const [me, peer] = [testNode('pt-me'), testNode('pt-peer')]
  const table = new Membership({ selfId: me.signer.nodeId, settings, ula })
  const rec = recordOf(peer, { name: 'pt-peer' })
  table.accept(rec, sealRecord(peer, rec), T0, 'gossip')
  const lines: Array<{ msg: string, meta: Record<string, unknown> }> = []
  const log = { debug: (msg: string, meta?: Record<string, unknown>) => { lines.push({ msg, meta: meta ?? {} }) }, info () {}, warn () {}, error () {} }
  const timeline = new PairTimeline(log)
  const desired = (kick?: number): DesiredWireGuard => ({
    interface: 'wgm0', privateKeyFile: '/k', listenPort: 51820, addresses: [], mtu: 1420,
    peers: [{ publicKey: rec.wgPublicKey, endpoint: '198.18.1.2:51820', allowedIps: [`${rec.ipv4}/32`], ...(kick === undefined ? {} : { kick }) }]
  })
  timeline.applied(desired(), table, T0 + 100)
  timeline.applied(desired(), table, T0 + 200)
  timeline.applied(desired(1), table, T0 + 700)
  timeline.applied(desired(1), table, T0 + 900)
  timeline.applied(desired(2), table, T0 + 1700)
  assert.deepEqual(lines.map(l => [l.msg, l.meta.peer, l.meta.retry, l.meta.msSinceRecord]), [
    ['pair timeline: peer added', 'pt-peer', undefined, 100],
    ['pair timeline: first-contact retry', 'pt-peer', 1, 700],
    ['pair timeline: first-contact retry', 'pt-peer', 2, 1700]
  ])
})

test('where an end is behind a NAT, a peer that sent something is not re-created (its entry may have roamed to the mapped address)', () => {
  const { step } = end(testNode('fc-nat-me'), testNode('fc-nat-peer'), 'cone')
  const kicks = (now: number, rx: number): number => step(now, 0, rx).kick ?? 0
  for (let t = 0; t <= 6000; t += 250) assert.equal(kicks(T0 + t, 148), 0, `rx 148 at +${t} ms`)
  // the same entry re-created by WireGuard's side (counters back to 0): nothing came, so it is tried again
  for (let t = 6250; t <= 9000; t += 250) kicks(T0 + t, 0)
  assert.ok(kicks(T0 + 9250, 0) > 0, 'a peer that sent nothing is still re-created behind a NAT')
})
