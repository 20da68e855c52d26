import { test } from 'node:test'
import assert from 'node:assert/strict'
import { DialPolicy, seedToMultiaddr } from '../src/dial-policy.js'

const t = (n: number) => ({ key: `/ip4/198.18.1.${n}/tcp/51821/p2p/P${n}`, addr: `/ip4/198.18.1.${n}/tcp/51821/p2p/P${n}`, peerId: `P${n}` })
const seed = { key: '/ip4/198.18.1.9/tcp/51821', addr: '/ip4/198.18.1.9/tcp/51821' }

test('with no connection it dials every seed and member; seeds are never forgotten', () => {
  const p = new DialPolicy({ random: () => 0.5 })
  assert.deepEqual(p.choose(0, new Set(), [seed], [t(1), t(2)]).map(x => x.key), [seed.key, t(1).key, t(2).key])
})

test('below the degree it tops up with unconnected members only', () => {
  const p = new DialPolicy({ degree: 3, healEveryMs: 1e9, random: () => 0.5 })
  p.choose(0, new Set(['P1']), [], []) // consume the first heal slot
  const out = p.choose(1, new Set(['P1']), [seed], [t(1), t(2), t(3), t(4)])
  assert.equal(out.length, 2)
  assert.ok(out.every(x => x.peerId !== 'P1'))
})

test('at the degree, one extra dial per heal interval joins split halves', () => {
  const p = new DialPolicy({ degree: 1, healEveryMs: 10_000, random: () => 0.5 })
  assert.equal(p.choose(10_000, new Set(['P1']), [], [t(1), t(2)]).length, 1)
  assert.equal(p.choose(15_000, new Set(['P1']), [], [t(1), t(2)]).length, 0)
  assert.equal(p.choose(20_000, new Set(['P1']), [], [t(1), t(2)]).length, 1)
})

test('failures back off exponentially (250 ms doubling) up to 30 s, success resets', () => {
  const p = new DialPolicy()
  p.failed(seed.key, 0)
  assert.equal(p.choose(249, new Set(), [seed], []).length, 0)
  assert.equal(p.choose(250, new Set(), [seed], []).length, 1)
  p.failed(seed.key, 250)
  assert.equal(p.choose(749, new Set(), [seed], []).length, 0)
  assert.equal(p.choose(750, new Set(), [seed], []).length, 1)
  for (let i = 0; i < 10; i++) p.failed(seed.key, 0)
  assert.equal(p.choose(29_999, new Set(), [seed], []).length, 0)
  assert.equal(p.choose(30_000, new Set(), [seed], []).length, 1)
  p.succeeded(seed.key)
  assert.equal(p.choose(1, new Set(), [seed], []).length, 1)
})

test('seeds: host[:port] forms become multiaddrs', () => {
  assert.equal(seedToMultiaddr('198.18.1.1', 51821), '/ip4/198.18.1.1/tcp/51821')
  assert.equal(seedToMultiaddr('198.18.1.1:7000', 51821), '/ip4/198.18.1.1/tcp/7000')
  assert.equal(seedToMultiaddr('[fd00::1]:7000', 51821), '/ip6/fd00::1/tcp/7000')
  assert.equal(seedToMultiaddr('node-a.example', 51821), '/dns4/node-a.example/tcp/51821')
  assert.equal(seedToMultiaddr('/ip4/1.2.3.4/tcp/5', 51821), '/ip4/1.2.3.4/tcp/5')
  assert.throws(() => seedToMultiaddr('1.2.3.4:99999', 51821), /port/)
  assert.throws(() => seedToMultiaddr('a b', 51821), /host\[:port\]/)
})
