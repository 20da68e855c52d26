/**
 * The pure rules behind issue 7 (trust), items 2 and 3: what a live member holds stays with it,
 * and bounds on everything a member can make others store. The attacks themselves, against
 * running agents, are in test/inproc/attacks-members.test.ts.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Membership, MAX_OWN_MOVES, type MemberChange } from '../src/membership.js'
import { meshSettings } from '../src/settings.js'
import { validateSealed } from '../src/validate.js'
import { overlayIPv4, overlayIPv6 } from '../src/addressing.js'
import { indexSeenClaims, peerCandidates, seenClaims, shortId, MAX_SEEN_CANDIDATES } from '../src/candidates.js'
import { isValidGossipAddr, parseGossipAddr, peerIdOfNodeId } from '../src/gossip-addr.js'
import { NewMemberRate } from '../src/admission.js'
import type { NodeRecord } from '../src/types.js'
import { MESH_KEY, T0, recordOf, sealRecord, settings, testNode, ula, type TestNode } from './fixtures.js'

const SETTLE = settings.claimSettleMs

function selfTable (self: TestNode, over: Partial<NodeRecord> = {}, s = settings, at = T0): Membership {
  const t = new Membership({ selfId: self.signer.nodeId, settings: s, ula })
  const r = recordOf(self, { ipSince: at, ...over })
  t.accept(r, sealRecord(self, r), at, 'self')
  return t
}

/** validateSealed, then accept: the agent's path. Returns the reason or the changes. */
function offer (t: Membership, n: TestNode, r: NodeRecord, now: number, via: 'gossip' | 'sync' = 'gossip'): string | MemberChange[] {
  const sealed = sealRecord(n, r)
  const v = validateSealed(MESH_KEY, sealed, t, now)
  if (v.verdict !== 'accept') return v.reason
  return t.accept(v.record, sealed, now, via)
}

const lostOwn = (t: Membership, x: string | MemberChange[]): boolean =>
  Array.isArray(x) && x.some(c => c.kind === 'conflict-lost' && c.nodeId === t.selfId)

test('I1: a held address stays with its holder: ipSince=0 and any nodeId win nothing, on the holder and on third parties', () => {
  const [victim, third, other] = ['victim', 'third', 'other'].map(testNode) as [TestNode, TestNode, TestNode]
  const vRec = recordOf(victim)
  // on the victim itself, past its settle window
  const own = selfTable(victim)
  assert.ok(Array.isArray(offer(own, other, recordOf(other), T0 + 1)), 'first contact')
  // on a third party that holds the victim
  const seen = selfTable(third)
  assert.ok(Array.isArray(offer(seen, victim, vRec, T0 + 1)))
  for (let i = 0; i < 30; i++) { // a chase: a fresh identity each time, oldest possible claim
    const thief = testNode(`thief${i}`)
    const claim = recordOf(thief, { ipv4: vRec.ipv4, ipv6: vRec.ipv6, ipSince: 0, seq: 1 })
    const at = T0 + SETTLE + 1000 + i
    assert.equal(offer(own, thief, claim, at), 'ip-conflict')
    assert.equal(offer(seen, thief, claim, at), 'ip-conflict')
    assert.equal(offer(seen, thief, { ...claim, ipv4: recordOf(thief).ipv4 }, at), 'ip-conflict', 'the IPv6 alone is held too')
  }
  assert.equal(own.ipv4Holder(vRec.ipv4), victim.signer.nodeId)
  assert.equal(seen.ipv4Holder(vRec.ipv4), victim.signer.nodeId)
  assert.equal(seen.get(victim.signer.nodeId)?.conflict, undefined)
  // a known member moving onto the address is refused as well
  const moved = recordOf(other, { seq: 2, ipv4: vRec.ipv4, ipSince: 0 })
  assert.equal(offer(seen, other, recordOf(other), T0 + 2).constructor, Array)
  assert.equal(offer(seen, other, moved, T0 + 3), 'ip-conflict')
  // the holder keeps it while dead, and frees it when it leaves
  seen.declareDead(victim.signer.nodeId, vRec.seq)
  assert.equal(offer(seen, testNode('late'), recordOf(testNode('late'), { ipv4: vRec.ipv4 }), T0 + 4), 'ip-conflict')
  assert.ok(Array.isArray(offer(seen, victim, recordOf(victim, { seq: 9, leaving: true }), T0 + 5)))
  assert.ok(Array.isArray(offer(seen, testNode('late'), recordOf(testNode('late'), { ipv4: vRec.ipv4 }), T0 + 6)), 'a departed holder frees it')
})

test('a joiner gives its fresh address to a holder it learns with the table, within the settle window only', () => {
  const [joiner, holder] = [testNode('joiner'), testNode('holder')]
  const mine = recordOf(joiner)
  const theirs = recordOf(holder, { ipv4: mine.ipv4, ipv6: mine.ipv6, ipSince: T0 - 3_600_000 })
  const t = selfTable(joiner)
  const got = offer(t, holder, theirs, T0 + 50, 'sync')
  assert.ok(lostOwn(t, got), `the joiner moves: ${JSON.stringify(got)}`)
  assert.equal(t.ipv4Holder(mine.ipv4), holder.signer.nodeId)
  // once settled, nothing takes the own address any more
  const late = selfTable(joiner)
  offer(late, testNode('x'), recordOf(testNode('x')), T0 + 10)
  assert.equal(offer(late, holder, theirs, T0 + 10 + SETTLE + 1), 'ip-conflict')
  // an address restored from an earlier run is never provisional
  const restarted = selfTable(joiner, { ipSince: T0 - 600_000 })
  assert.equal(offer(restarted, holder, theirs, T0 + 50), 'ip-conflict')
  // a member we already knew moving onto our address is refused even in the window
  const known = selfTable(joiner)
  offer(known, holder, recordOf(holder), T0 + 10)
  assert.equal(offer(known, holder, { ...theirs, seq: 2 }, T0 + 20), 'ip-conflict')
  // a newer claim than ours (a member that saw our record and claimed the address after us) is refused, even in the window
  const fresh = selfTable(joiner)
  assert.equal(offer(fresh, holder, { ...theirs, ipSince: T0 + 10 }, T0 + 20), 'ip-conflict')
  // the own key is never given away
  const keyed = selfTable(joiner)
  assert.equal(offer(keyed, holder, recordOf(holder, { wgPublicKey: joiner.wgPublicKey }), T0 + 5), 'wg-key-conflict')
})

test(`a chase of a joiner in its window ends after ${MAX_OWN_MOVES} moves`, () => {
  const joiner = testNode('chased')
  const t = selfTable(joiner)
  let r = recordOf(joiner)
  let moves = 0
  for (let i = 0; i < 10; i++) {
    const thief = testNode(`chaser${i}`)
    const got = offer(t, thief, recordOf(thief, { ipv4: r.ipv4, ipv6: r.ipv6, ipSince: 0 }), T0 + 100 + i)
    if (!lostOwn(t, got)) { assert.equal(got, 'ip-conflict'); continue }
    moves++
    r = recordOf(joiner, { seq: r.seq + 1, ipSalt: r.ipSalt + 1, ipSince: T0 + 100 + i })
    t.accept(r, sealRecord(joiner, r), T0 + 100 + i, 'self')
  }
  assert.equal(moves, MAX_OWN_MOVES)
})

test('I2: a held WireGuard key stays with its holder, whichever nodeId is lower', () => {
  const self = testNode('keyself')
  const victim = testNode('keyvictim')
  const t = selfTable(self)
  offer(t, victim, recordOf(victim), T0 + 1)
  let lower = 0
  for (let i = 0; i < 40; i++) {
    const thief = testNode(`keythief${i}`)
    if (thief.signer.nodeId < victim.signer.nodeId) lower++
    assert.equal(offer(t, thief, recordOf(thief, { wgPublicKey: victim.wgPublicKey, ipSince: 0 }), T0 + 2 + i), 'wg-key-conflict')
  }
  assert.ok(lower > 0, 'some thieves had the lower nodeId')
  assert.equal(t.get(victim.signer.nodeId)?.conflict, undefined)
})

test('I5: members, new identities and tombstones are bounded; each drop has a reason', () => {
  const small = meshSettings({ heartbeatMs: 1000, deadAfterMs: 3000, expireAfterMs: 60_000, maxMembers: 5, maxDeparted: 3, newMembersPerMinute: 60, newMembersBurst: 6 })
  const self = testNode('bself')
  const t = selfTable(self, {}, small)
  const reasons: string[] = []
  const live = Array.from({ length: 6 }, (_, i) => testNode(`live${i}`))
  for (const n of live) { const x = offer(t, n, recordOf(n), T0 + 1); if (!Array.isArray(x)) reasons.push(x) }
  assert.deepEqual(reasons, ['table-full', 'table-full'], '4 members beside self, then full')
  assert.equal(t.active().length, 5)
  // departures of never-seen nodes: the burst of 6 is spent after 2 (4 went to live members)
  const junk = Array.from({ length: 5 }, (_, i) => testNode(`junk${i}`))
  const tag = (x: string | MemberChange[]): string => Array.isArray(x) ? 'ok' : x
  const jr = junk.map((n, i) => tag(offer(t, n, recordOf(n, { leaving: true }), T0 + 2 + i)))
  assert.deepEqual(jr, ['ok', 'ok', 'new-member-rate', 'new-member-rate', 'new-member-rate'])
  // a second apiece later: the rate allows them, the tombstone cap (3) does not
  const later = junk.slice(2).map((n, i) => tag(offer(t, n, recordOf(n, { leaving: true }), T0 + 10_000 + i * 1000)))
  assert.deepEqual(later, ['ok', 'departures-full', 'departures-full'])
  // a known member leaving always gets in: the shortest-lived tombstone makes room
  const leaver = live[0]!
  const changes = offer(t, leaver, recordOf(leaver, { seq: 2, leaving: true }), T0 + 20_000)
  assert.ok(Array.isArray(changes))
  assert.deepEqual(changes.map(c => c.kind), ['left', 'expired'])
  assert.ok(junk.some(n => changes.some(c => c.nodeId === n.signer.nodeId)), 'a junk tombstone (lived 0 s) went')
  assert.equal(t.get(leaver.signer.nodeId)?.status, 'left')
  assert.equal(t.all().filter(m => m.status === 'left').length, 3)
  assert.deepEqual(t.drops(), { 'departure-evicted': 1 })
  // with a slot free again (one left), a rate-limited newcomer gets in once the bucket refills
  const newcomer = testNode('newcomer')
  assert.ok(Array.isArray(offer(t, newcomer, recordOf(newcomer), T0 + 30_000)))
})

test('the new-member rate: a burst, then per minute', () => {
  const r = new NewMemberRate(60, 3)
  for (let i = 0; i < 3; i++) { assert.ok(r.available(T0)); r.take(T0) }
  assert.ok(!r.available(T0))
  assert.ok(!r.available(T0 + 999))
  assert.ok(r.available(T0 + 1000))
  assert.ok(r.available(T0 + 3_600_000)) // refills to the burst, no further
  for (let i = 0; i < 3; i++) r.take(T0 + 3_600_000)
  assert.ok(!r.available(T0 + 3_600_000))
})

test('sync order: own record, then live members (longest known first), then dead, then tombstones', () => {
  const self = testNode('oself')
  const t = selfTable(self)
  const [a, b, d, l] = ['oa', 'ob', 'od', 'ol'].map(testNode) as [TestNode, TestNode, TestNode, TestNode]
  offer(t, l, recordOf(l, { leaving: true }), T0 + 1)
  offer(t, d, recordOf(d), T0 + 2)
  t.declareDead(d.signer.nodeId, 1)
  offer(t, b, recordOf(b), T0 + 3)
  offer(t, a, recordOf(a), T0 + 4)
  const order = t.sealedInSyncOrder([l, a, d, b, self].map(n => n.signer.nodeId)).map(s => t.all().find(m => m.sealed === s)!.record.name)
  assert.deepEqual(order, ['oself', 'ob', 'oa', 'od', 'ol'])
})

test('I4: an observed endpoint is tried after the peer\'s own, and only when its host is one the peer advertises', () => {
  const [p, honest, liar] = [testNode('sp'), testNode('shonest'), testNode('sliar')]
  const peer = recordOf(p, { endpoints: ['198.18.2.5:51820'] })
  const sid = shortId(peer.nodeId)
  const h = recordOf(honest, { seen: { [sid]: '198.18.2.5:40001' } })
  const l = recordOf(liar, { seen: { [sid]: '203.0.113.66:4444' } })
  const c = peerCandidates(peer, { localSubnets: [], seen: indexSeenClaims([l, h, peer]) })
  assert.deepEqual(c, ['198.18.2.5:51820', '198.18.2.5:40001'])
  assert.deepEqual(seenClaims(peer, indexSeenClaims([l, h])), { plausible: ['198.18.2.5:40001'], dropped: 1 })
  // however the liar flaps its claim, the peer's own endpoint stays first
  for (let port = 1000; port < 1100; port++) {
    const flap = recordOf(liar, { seen: { [sid]: `198.18.2.5:${port}` } })
    assert.equal(peerCandidates(peer, { localSubnets: [], seen: indexSeenClaims([flap, h]) })[0], '198.18.2.5:51820')
  }
  // many claimers: at most MAX_SEEN_CANDIDATES observed ones
  const many = Array.from({ length: 10 }, (_, i) => recordOf(testNode(`sm${i}`), { seen: { [sid]: `198.18.2.5:${2000 + i}` } }))
  assert.equal(peerCandidates(peer, { localSubnets: [], seen: indexSeenClaims(many) }).length, 1 + MAX_SEEN_CANDIDATES)
  // everyone's claims in one index (as the path manager builds it per tick): still the peer's own first, the liar dropped
  const all = indexSeenClaims([l, h, peer, ...many])
  assert.equal(peerCandidates(peer, { localSubnets: [], seen: all })[0], '198.18.2.5:51820')
  assert.equal(seenClaims(peer, all).dropped, 1, 'the liar\'s claim is dropped')
})

test('I7: gossip addresses are parsed strictly', () => {
  const n = testNode('gossiper')
  const id = n.signer.nodeId
  const pid = peerIdOfNodeId(id)!
  assert.match(pid, /^12D3KooW[1-9A-HJ-NP-Za-km-z]{44}$/)
  for (const ok of ['/ip4/198.18.1.1/tcp/51821', `/ip4/127.0.0.1/tcp/1/p2p/${pid}`, '/ip6/fd00::1/tcp/51821', '/ip6/2001:db8:1::1/tcp/51821', '/ip6/fec0::1/tcp/1', '/dns4/node1.example.com/tcp/51821', `/dns/a-b.example/tcp/65535/p2p/${pid}`]) {
    assert.ok(isValidGossipAddr(ok, id), ok)
  }
  const otherPid = peerIdOfNodeId(testNode('someone-else').signer.nodeId)!
  for (const bad of [
    '/', '/ip4/198.18.1.1', '/ip4/198.18.1.1/tcp', '/ip4/198.18.1.1/udp/51821', '/ip4/198.18.1.1/tcp/0', '/ip4/198.18.1.1/tcp/65536',
    '/ip4/198.18.1.1/tcp/051821', '/ip4/0.0.0.0/tcp/1', '/ip4/224.0.0.1/tcp/1', '/ip4/255.255.255.255/tcp/1', '/ip6/::/tcp/1', '/ip6/ff02::1/tcp/1',
    '/ip6/fe80::1/tcp/51821', '/ip6/febf::1/tcp/51821', // link-local: undialable without a zone
    '/ip4/198.18.1.1/tcp/1/ws', '/ip4/198.18.1.1/tcp/1/p2p-circuit', `/ip4/198.18.1.1/tcp/1/p2p/${otherPid}`, `/ip4/198.18.1.1/tcp/1/p2p/${pid}/p2p-circuit`,
    '/unix/tmp/sock', '/dns4/-bad.example/tcp/1', '/dns4/1.2.3.4/tcp/1', '/dns4/a..b/tcp/1', '/memory/x', '/ip4/1.2.3.4/tcp/1/', '//ip4/1.2.3.4/tcp/1'
  ]) assert.equal(parseGossipAddr(bad) !== undefined && isValidGossipAddr(bad, id), false, bad)
  // in a record: at most 8, each strict
  const t = selfTable(testNode('gself'))
  const r = recordOf(n, { gossipAddrs: ['/ip4/198.18.1.1/tcp/51821', '/ip4/198.18.1.1/udp/51821'] })
  assert.equal(offer(t, n, r, T0 + 1), 'schema')
  assert.equal(offer(t, n, recordOf(n, { gossipAddrs: Array.from({ length: 9 }, (_, i) => `/ip4/198.18.1.${i + 1}/tcp/51821`) }), T0 + 1), 'schema')
  assert.ok(Array.isArray(offer(t, n, recordOf(n, { gossipAddrs: [`/ip4/198.18.1.1/tcp/51821/p2p/${pid}`] }), T0 + 1)))
})

test('addresses of a record are hashed as before (unchanged format)', () => {
  const n = testNode('fmt')
  assert.equal(recordOf(n).ipv4, overlayIPv4(settings.cidr4, n.wgPublicKey, 0))
  assert.equal(recordOf(n).ipv6, overlayIPv6(ula, n.wgPublicKey, 0))
})
