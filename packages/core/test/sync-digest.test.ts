import { test } from 'node:test'
import assert from 'node:assert/strict'
import { decodeDigest, diffDigest, encodeDigest, tableHash, DIGEST_ENTRIES_PER_BLOB } from '../src/sync-digest.js'
import type { DigestEntry } from '../src/membership.js'
import { testNode } from './fixtures.js'

const ids = Array.from({ length: 900 }, (_, i) => testNode(`d${i}`).signer.nodeId).sort()
const entries = (f: (i: number) => Partial<DigestEntry> = () => ({})): DigestEntry[] => ids.map((nodeId, i) => ({ nodeId, seq: 1_800_000_000_000 + i, dead: false, ...f(i) }))

test('digest round trip in blobs below the record cap; the hash tells equal tables in 32 bytes', () => {
  const e = entries(i => ({ dead: i % 7 === 0 }))
  const blobs = encodeDigest(e)
  assert.equal(blobs.length, Math.ceil(900 / DIGEST_ENTRIES_PER_BLOB))
  assert.ok(blobs.every(b => b.length <= 16 * 1024))
  assert.deepEqual(decodeDigest(blobs), e)
  assert.deepEqual(tableHash(e), tableHash(decodeDigest(blobs)!))
  assert.notDeepEqual(tableHash(e), tableHash(entries()))
  assert.equal(tableHash(e).length, 32)
})

test('malformed digests are refused, never thrown', () => {
  const good = encodeDigest(entries().slice(0, 3))[0]!
  assert.equal(decodeDigest([good.subarray(1)]), undefined, 'wrong length')
  const zero = Uint8Array.from(good); zero.fill(0, 32, 40)
  assert.equal(decodeDigest([zero]), undefined, 'seq 0')
  const flag = Uint8Array.from(good); flag[40] = 2
  assert.equal(decodeDigest([flag]), undefined, 'bad flag')
  const huge = Uint8Array.from(good); huge.fill(0xff, 32, 40)
  assert.equal(decodeDigest([huge]), undefined, 'seq beyond 2^53')
  assert.equal(decodeDigest(encodeDigest(entries()), 100), undefined, 'more entries than allowed')
  for (let i = 0; i < 500; i++) {
    const b = new Uint8Array(Math.floor(Math.random() * 200))
    for (let j = 0; j < b.length; j++) b[j] = Math.floor(Math.random() * 256)
    assert.doesNotThrow(() => decodeDigest([b]))
  }
})

test('diff: send what the other lacks or holds older; take dead marks for the same seq', () => {
  const ours = entries().slice(0, 5)
  const theirs = [
    { ...ours[0]!, seq: ours[0]!.seq - 1 }, // older there → send
    { ...ours[1]! }, // same → nothing
    { ...ours[2]!, seq: ours[2]!.seq + 1 }, // newer there → they send it to us
    { ...ours[3]!, dead: true } // they hold it dead at our seq → take the mark
    // ours[4] missing there → send
  ]
  const d = diffDigest(ours, theirs)
  assert.deepEqual(d.send, [ours[0]!.nodeId, ours[4]!.nodeId])
  assert.deepEqual(d.dead, [{ nodeId: ours[3]!.nodeId, seq: ours[3]!.seq }])
})
