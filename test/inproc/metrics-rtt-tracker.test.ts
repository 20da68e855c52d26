/**
 * RttTracker (pure, fake clock): an ack from the address pinged gives a sample, any other ack or
 * nonce none; the estimate is the median of the last 5 (a handshake outlier drops out); the
 * extra RTT ping goes at most once per `everyMs`, to the stalest member (an unanswered one does
 * not keep the turn), only when stale.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { RttTracker } from '../../packages/agent/src/rtt.js'

test('samples only from the pinged address; median of the last 5', () => {
  let now = 0
  const t = new RttTracker({ clock: () => now })
  const ping = (nonce: string, ms: number, from = '10.0.0.2:1', id: string | null = 'b'): void => {
    t.sent(nonce, '10.0.0.2:1'); now += ms; t.acked(nonce, from, id ?? undefined)
  }
  ping('n1', 800) // the first carries a handshake
  assert.equal(t.get('b')!.ms, 800)
  ping('n2', 10); ping('n3', 20)
  assert.equal(t.get('b')!.ms, 20, 'median of 800, 10, 20')
  ping('n4', 50, '10.0.0.9:1') // an ack from elsewhere: no sample
  ping('n5', 30, '10.0.0.2:1', null) // not a member's address: no sample
  t.acked('unknown', '10.0.0.2:1', 'b')
  assert.equal(t.get('b')!.ms, 20)
  ping('n6', 15); ping('n7', 12); ping('n8', 11)
  assert.equal(t.get('b')!.ms, 12, 'the outlier is gone from the last 5 (10 20 15 12 11)')
  t.sent('late', '10.0.0.2:1'); now += 6000; t.acked('late', '10.0.0.2:1', 'b')
  assert.equal(t.get('b')!.ms, 12, 'an ack after 5 s is no sample')
  assert.equal(t.get('b')!.ageMs, 6000)
})

test('the extra ping: once per everyMs at most, to the stalest member, only when stale', () => {
  let now = 100_000
  const t = new RttTracker({ clock: () => now, everyMs: 10_000, freshMs: 60_000 })
  const members = [{ nodeId: 'a', addr: 'A' }, { nodeId: 'b', addr: 'B' }, { nodeId: 'c', addr: 'C' }]
  const sample = (id: string, addr: string): void => { t.sent(`x${id}${now}`, addr); t.acked(`x${id}${now}`, addr, id) }
  sample('a', 'A'); now += 1000; sample('c', 'C')
  assert.equal(t.due(members)?.nodeId, 'b', 'never measured first')
  assert.equal(t.due(members), undefined, 'not again within 10 s')
  now += 10_000; sample('b', 'B')
  assert.equal(t.due(members), undefined, 'all fresh')
  now += 60_000
  assert.equal(t.due(members)?.nodeId, 'a', 'then the stalest')
  now += 10_000
  assert.equal(t.due(members)?.nodeId, 'c', 'a was tried (unanswered): c has the next turn')
  now += 10_000
  assert.equal(t.due(members)?.nodeId, 'b')
  t.retain(id => id !== 'c')
  assert.equal(t.get('c'), undefined)
})
