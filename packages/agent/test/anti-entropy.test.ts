// Anti-entropy takes a large exchange's records a slice per event-loop turn (anti-entropy.ts,
// TAKE_PER_TURN): a flood of thousands must not hold the loop while it is validated.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Membership } from '@wgmesh/core'
import { AntiEntropy, TAKE_PER_TURN } from '../src/anti-entropy.js'
import { settings, testNode, ula } from '../../core/test/fixtures.js'

test('a large exchange is taken TAKE_PER_TURN records per event-loop turn, all of them in order', async () => {
  const table = new Membership({ selfId: testNode('ae-me').signer.nodeId, settings, ula })
  const taken: number[] = []
  const ae = new AntiEntropy({
    table: () => table,
    selfId: () => 'me',
    selfSeq: () => 1,
    take: (sealed) => { taken.push(sealed[0]! + 256 * sealed[1]!); return 'ignore' },
    changed: () => {},
    refute: () => {},
    publish: () => {},
    syncRandomPeer: async () => {}
  })
  const n = 3 * TAKE_PER_TURN + 10
  const received = Array.from({ length: n }, (_, i) => new Uint8Array([i % 256, Math.floor(i / 256)]))
  ae.result({ received, remoteDigest: [], sent: 0, dropped: 0, rounds: 2 }, 'peer')
  assert.equal(taken.length, TAKE_PER_TURN, 'the first slice at once; the loop is free after it')
  await new Promise(resolve => setImmediate(resolve))
  assert.equal(taken.length, 2 * TAKE_PER_TURN, 'one more slice per turn')
  await new Promise(resolve => setTimeout(resolve, 20))
  assert.deepEqual(taken, received.map((_, i) => i), 'then every record, in order')
  ae.stop()
})

test('a small exchange is taken at once, as before', () => {
  const table = new Membership({ selfId: testNode('ae-me2').signer.nodeId, settings, ula })
  let taken = 0
  const ae = new AntiEntropy({
    table: () => table, selfId: () => 'me', selfSeq: () => 1, take: () => { taken++; return 'ignore' },
    changed: () => {}, refute: () => {}, publish: () => {}, syncRandomPeer: async () => {}
  })
  ae.result({ received: Array.from({ length: 20 }, () => new Uint8Array(1)), remoteDigest: [], sent: 0, dropped: 0, rounds: 2 }, 'peer')
  assert.equal(taken, 20)
  ae.stop()
})
