import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Membership } from '../src/membership.js'
import { T0, recordOf, sealRecord, settings, testNode, ula } from './fixtures.js'

const self = testNode('self')
const table = (): Membership => new Membership({ selfId: self.signer.nodeId, settings, ula })
const a = testNode('a')

function put (t: Membership, seq: number, now: number, over = {}, via: 'gossip' | 'sync' = 'gossip'): string[] {
  const r = recordOf(a, { seq, issuedAt: now, ...over })
  assert.equal(t.check(r, now), undefined)
  return t.accept(r, sealRecord(a, r), now, via).map(c => c.kind)
}

test('merge by seq: newer replaces, older is refused', () => {
  const t = table()
  assert.deepEqual(put(t, 1, T0), ['joined'])
  assert.deepEqual(put(t, 2, T0 + 1000, { name: 'renamed' }), ['updated'])
  assert.equal(t.get(a.signer.nodeId)?.record.name, 'renamed')
  assert.equal(t.check(recordOf(a, { seq: 1, issuedAt: T0 }), T0 + 1000), 'replay')
})

test('silence alone kills nobody: records go out on change, liveness comes from the failure detector', () => {
  const t = table()
  put(t, 1, T0)
  assert.deepEqual(t.tick(T0 + 10 * settings.deadAfterMs), [])
  assert.equal(t.get(a.signer.nodeId)?.status, 'alive')
})

test('a suspect is dead after the suspicion timeout, forgotten after expireAfter, alive again on a newer record', () => {
  const t = table()
  put(t, 1, T0)
  assert.deepEqual(t.suspect(a.signer.nodeId, 1, 'x', T0 + 100).map(c => c.kind), ['suspect'])
  assert.deepEqual(t.suspect(a.signer.nodeId, 1, 'x', T0 + 150), [], 'suspected once')
  assert.deepEqual(t.tick(T0 + 100 + settings.suspicionMaxMs - 1), [])
  assert.deepEqual(t.tick(T0 + 100 + settings.suspicionMaxMs).map(c => c.kind), ['dead'])
  assert.equal(t.get(a.signer.nodeId)?.status, 'dead')
  assert.deepEqual(t.tick(T0 + 100 + settings.suspicionMaxMs + 1), [], 'dead is reported once')
  assert.deepEqual(put(t, 2, T0 + 5000), ['alive'], 'a newer record refutes')
  assert.equal(t.get(a.signer.nodeId)?.suspect, undefined)
  t.suspect(a.signer.nodeId, 2, 'x', T0 + 6000)
  t.tick(T0 + 6000 + settings.suspicionMaxMs)
  assert.deepEqual(t.tick(T0 + 5000 + settings.expireAfterMs + 1).map(c => c.kind), ['expired'])
  assert.equal(t.size, 0)
})

test('a refutation (newer record) within the suspicion window clears a false suspicion', () => {
  const t = table()
  put(t, 1, T0)
  t.suspect(a.signer.nodeId, 1, 'x', T0)
  assert.deepEqual(put(t, 2, T0 + 300), ['updated'])
  assert.deepEqual(t.tick(T0 + settings.suspicionMaxMs * 2), [], 'no death after the refutation')
  assert.deepEqual(t.suspect(a.signer.nodeId, 1, 'y', T0 + 400), [], 'a stale accusation (older seq) is ignored')
  assert.equal(t.get(a.signer.nodeId)?.status, 'alive')
})

test('Lifeguard: independent accusers shorten the suspicion down to the minimum', () => {
  const t = table()
  put(t, 1, T0)
  assert.equal(t.suspicionTimeout(1), settings.suspicionMaxMs)
  assert.ok(t.suspicionTimeout(2) < settings.suspicionMaxMs)
  assert.equal(t.suspicionTimeout(settings.observers + 1), settings.suspicionMinMs)
  assert.equal(t.suspicionTimeout(50), settings.suspicionMinMs)
  t.suspect(a.signer.nodeId, 1, 'x', T0)
  for (let i = 0; i < settings.observers; i++) t.suspect(a.signer.nodeId, 1, `y${i}`, T0 + 1)
  assert.deepEqual(t.tick(T0 + settings.suspicionMinMs).map(c => c.kind), ['dead'])
})

test('a dead mark covers records up to its seq (also when it arrives first), a newer record lifts it', () => {
  const t = table()
  put(t, 3, T0)
  assert.deepEqual(t.declareDead(a.signer.nodeId, 2), [], 'a mark for an older record is stale')
  assert.deepEqual(t.declareDead(a.signer.nodeId, 3).map(c => c.kind), ['dead'])
  assert.deepEqual(t.digest().map(d => [d.seq, d.dead]), [[3, true]])
  assert.deepEqual(put(t, 4, T0 + 10), ['alive'])
  assert.deepEqual(t.digest().map(d => [d.seq, d.dead]), [[4, false]])
})

test('leaving removes at once and the tombstone blocks older copies', () => {
  const t = table()
  put(t, 1, T0)
  assert.deepEqual(put(t, 2, T0 + 10, { leaving: true }), ['left'])
  assert.equal(t.active().length, 0)
  assert.equal(t.check(recordOf(a, { seq: 1, issuedAt: T0 }), T0 + 20), 'replay', 'an old record cannot resurrect it')
  assert.equal(t.takenIPv4().size, 0, 'a departed node frees its address')
  assert.deepEqual(put(t, 3, T0 + 30), ['alive'], 'a fresh record (rejoin) brings it back')
})

test('a record learned through sync is not proof of life: an old dead member still expires', () => {
  const t = table()
  put(t, 1, T0, {}, 'sync')
  t.declareDead(a.signer.nodeId, 1)
  assert.deepEqual(put(t, 2, T0 + settings.expireAfterMs, {}, 'sync'), ['alive'])
  t.declareDead(a.signer.nodeId, 2)
  assert.deepEqual(t.tick(T0 + settings.expireAfterMs + 1).map(c => c.kind), ['expired'], 'the sync copy did not renew it')
})

test('old records are fine, records from the future are not', () => {
  const t = table()
  assert.equal(t.check(recordOf(a, { issuedAt: T0 - 86_400_000 }), T0), undefined)
  assert.equal(t.check(recordOf(a, { issuedAt: T0 + settings.maxClockSkewMs + 1 }), T0), 'clock-skew')
})

test('the own record never goes dead', () => {
  const t = table()
  const r = recordOf(self)
  assert.equal(t.check(r, T0, 'self'), undefined)
  assert.equal(t.check(r, T0), 'self', 'our own record from the network is ignored')
  t.accept(r, sealRecord(self, r), T0, 'self')
  assert.deepEqual(t.tick(T0 + 10 * settings.deadAfterMs), [])
})
