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

test('a silent node is dead after deadAfter, forgotten after expireAfter, alive again on a new record', () => {
  const t = table()
  put(t, 1, T0)
  assert.deepEqual(t.tick(T0 + settings.deadAfterMs), [])
  assert.deepEqual(t.tick(T0 + settings.deadAfterMs + 1).map(c => c.kind), ['dead'])
  assert.equal(t.get(a.signer.nodeId)?.status, 'dead')
  assert.deepEqual(t.tick(T0 + settings.deadAfterMs + 2), [], 'dead is reported once')
  assert.deepEqual(put(t, 2, T0 + 5000), ['alive'])
  assert.deepEqual(t.tick(T0 + 5000 + settings.expireAfterMs + 1).map(c => c.kind), ['expired'])
  assert.equal(t.size, 0)
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

test('a record learned through sync only counts as recent, not as heard now', () => {
  const t = table()
  put(t, 1, T0, {}, 'sync')
  const dead = t.tick(T0 + settings.deadAfterMs / 2 + 1)
  assert.deepEqual(dead.map(c => c.kind), ['dead'])
})

test('the own record never goes dead', () => {
  const t = table()
  const r = recordOf(self)
  assert.equal(t.check(r, T0, 'self'), undefined)
  assert.equal(t.check(r, T0), 'self', 'our own record from the network is ignored')
  t.accept(r, sealRecord(self, r), T0, 'self')
  assert.deepEqual(t.tick(T0 + 10 * settings.deadAfterMs), [])
})
