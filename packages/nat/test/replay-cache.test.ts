import assert from 'node:assert/strict'
import { test } from 'node:test'
import { ReplayCache } from '../src/replay-cache.js'

test('ReplayCache: a nonce is fresh once within its ttl, fresh again after; full of live nonces it fails closed', () => {
  let t = 0
  const c = new ReplayCache({ ttlMs: 1000, maxEntries: 3, now: () => t })
  assert.equal(c.check('a'), 'fresh')
  assert.equal(c.check('a'), 'replay')
  t = 500
  assert.equal(c.check('b'), 'fresh')
  assert.equal(c.check('c'), 'fresh')
  assert.equal(c.check('d'), 'full', 'no room: refused, not let through')
  assert.equal(c.check('a'), 'replay')
  t = 1001 // 'a' expired and is swept
  assert.equal(c.check('d'), 'fresh')
  assert.equal(c.size, 3)
  t = 1600
  assert.equal(c.check('a'), 'fresh')
  assert.equal(c.size, 2)
})
