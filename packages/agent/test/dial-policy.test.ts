import { test } from 'node:test'
import assert from 'node:assert/strict'
import { DialPolicy, seedToMultiaddr } from '../src/dial-policy.js'

const t = (n: number) => ({ key: `/ip4/198.18.1.${n}/tcp/51821/p2p/P${n}`, addr: `/ip4/198.18.1.${n}/tcp/51821/p2p/P${n}`, peerId: `P${n}` })
const seed = { key: '/ip4/198.18.1.9/tcp/51821', addr: '/ip4/198.18.1.9/tcp/51821' }

test('with no connection it dials every seed and member; seeds are never forgotten', () => {
  const p = new DialPolicy({ random: () => 0.5 })
  assert.deepEqual(p.choose(0, new Set(), [seed], [t(1), t(2)]).map(x => x.key), [seed.key, t(1).key, t(2).key])
})

const now = { degreeDelayMs: 0, degreePaceMs: 0 } // degree dials at once (the pacing has its own test)

test('below the degree it tops up with unconnected members only', () => {
  const p = new DialPolicy({ degree: 3, healEveryMs: 1e9, random: () => 0.5, ...now })
  p.choose(0, new Set(['P1']), [], []) // consume the first heal slot
  const out = p.choose(1, new Set(['P1']), [seed], [t(1), t(2), t(3), t(4)])
  assert.equal(out.length, 3) // the never-reached seed, and two members
  assert.equal(out[0]!.key, seed.key)
  assert.ok(out.every(x => x.peerId !== 'P1'))
})

test('at the degree, one extra dial per heal interval joins split halves (the first one interval after the start)', () => {
  const p = new DialPolicy({ degree: 1, healEveryMs: 10_000, random: () => 0.5 })
  assert.equal(p.choose(0, new Set(), [], []).length, 0) // the start: no heal yet
  assert.equal(p.choose(5_000, new Set(['P1']), [], [t(1), t(2)]).length, 0)
  assert.equal(p.choose(10_000, new Set(['P1']), [], [t(1), t(2)]).length, 1)
  assert.equal(p.choose(15_000, new Set(['P1']), [], [t(1), t(2)]).length, 0)
  assert.equal(p.choose(20_000, new Set(['P1']), [], [t(1), t(2)]).length, 1)
})

test('member failures back off exponentially (250 ms doubling) up to 30 s, success resets', () => {
  const p = new DialPolicy({ random: () => 1 })
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
  assert.equal(seedToMultiaddr('[2001:db8::1]:51821', 7000), '/ip6/2001:db8::1/tcp/51821')
  assert.equal(seedToMultiaddr('2001:db8::1', 51821), '/ip6/2001:db8::1/tcp/51821')
  assert.equal(seedToMultiaddr('[2001:db8::1]', 51821), '/ip6/2001:db8::1/tcp/51821')
  // a host name is resolved to either family when dialed
  assert.equal(seedToMultiaddr('node-a.example', 51821), '/dns/node-a.example/tcp/51821')
  assert.equal(seedToMultiaddr('/ip4/1.2.3.4/tcp/5', 51821), '/ip4/1.2.3.4/tcp/5')
  assert.throws(() => seedToMultiaddr('1.2.3.4:99999', 51821), /port/)
  assert.throws(() => seedToMultiaddr('a b', 51821), /host\[:port\]/)
  assert.throws(() => seedToMultiaddr('[2001:db8::1]:0', 51821), /port/)
  assert.throws(() => seedToMultiaddr('2001:db8:::1', 51821), /not an IPv6 address/)
})

test('a seed that failed is dialed again after another node connected in (no split in two)', () => {
  const p = new DialPolicy({ degree: 8, healEveryMs: 1e9, random: () => 0.5 })
  p.choose(0, new Set(), [seed], []) // first heal slot
  p.failed(seed.key, 0, true) // the seed was still starting
  // a joiner connects in: we are no longer alone, but the seed's mesh was never reached
  assert.deepEqual(p.choose(50, new Set(['P7']), [seed], []).map(x => x.key), [], 'backing off')
  const again = p.choose(2000, new Set(['P7']), [seed], [])
  assert.deepEqual(again.map(x => x.key), [seed.key])
  // however many times it failed, a never-reached seed is retried within 2 s
  for (let i = 0; i < 20; i++) p.failed(seed.key, 2000, true)
  assert.equal(p.choose(4000, new Set(['P7']), [seed], []).length, 1)
  // once reached it is an ordinary member: no longer dialed while enough peers are connected
  p.succeeded(seed.key, true)
  assert.equal(p.seedReached(seed.key), true)
  assert.equal(p.choose(5000, new Set(['P7']), [seed], []).length, 0)
})

test('seed back-off is jittered so hosts started together do not retry in lockstep', () => {
  const a = new DialPolicy({ random: () => 0 })
  const b = new DialPolicy({ random: () => 0.99 })
  for (const p of [a, b]) { p.failed(seed.key, 0, true); p.failed(seed.key, 0, true) } // 200 ms step
  const firstReady = (p: DialPolicy): number => { let t = 0; while (p.choose(t, new Set(['X']), [seed], []).length === 0) t += 5; return t }
  assert.notEqual(firstReady(a), firstReady(b))
  assert.ok(firstReady(a) >= 150 && firstReady(b) <= 200)
})

test('failed() says when the address may be dialed again: 100 ms at first for a seed never reached, 250 ms for the rest', () => {
  const p = new DialPolicy({ random: () => 1 }) // no jitter
  const member = t(1)
  assert.equal(p.failed(seed.key, 1000, true), 1100)
  assert.equal(p.failed(seed.key, 2000, true), 2200)
  assert.equal(p.failed(member.key, 1000), 1250)
  assert.equal(p.failed(member.key, 2000), 2500)
  // a seed once reached backs off like any member
  const q = new DialPolicy({ random: () => 1 })
  q.succeeded(seed.key, true)
  assert.equal(q.failed(seed.key, 1000, true), 1250)
  // and what failed() says is what choose() does
  assert.equal(p.choose(2199, new Set(['X']), [seed], []).length, 0)
  assert.equal(p.choose(2200, new Set(['X']), [seed], []).length, 1)
})

test('one address per member: two addresses of one member never take two slots', () => {
  const p = new DialPolicy({ degree: 3, healEveryMs: 1e9, random: () => 0.5, ...now })
  const v4 = t(1)
  const v6 = { key: '/ip6/2001:db8::1/tcp/51821/p2p/P1', addr: '/ip6/2001:db8::1/tcp/51821/p2p/P1', peerId: 'P1' }
  const out = p.choose(0, new Set(['P0']), [], [v4, v6, t(2), t(3)])
  assert.equal(out.length, 2)
  assert.deepEqual(out.filter(x => x.peerId === 'P1').map(x => x.key), [v4.key], 'its first address only')
  // the first one backing off: the member's next address stands in
  p.failed(v4.key, 0)
  const next = p.choose(10, new Set(['P0', 'P2', 'P3']), [], [v4, v6, t(2), t(3)], 0)
  assert.deepEqual(next, [])
  const p2 = new DialPolicy({ degree: 8, healEveryMs: 1e9, random: () => 0.5, ...now })
  p2.failed(v4.key, 0)
  assert.deepEqual(p2.choose(10, new Set(['P0']), [], [v4, v6]).map(x => x.key), [v6.key])
})

test('dials in flight count toward the degree (unreachable members do not pile up dials)', () => {
  const p = new DialPolicy({ degree: 4, healEveryMs: 1e9, random: () => 0.5, ...now })
  const members = [t(1), t(2), t(3), t(4), t(5), t(6)]
  assert.equal(p.choose(0, new Set(['P0']), [], members).length, 3)
  assert.equal(p.choose(0, new Set(['P0']), [], members, 3).length, 0)
  assert.equal(p.choose(0, new Set(['P0']), [], members, 1).length, 2)
})

test('trim: nothing at or below the ceiling; above it, old connections down to 2 x degree', () => {
  const p = new DialPolicy({ degree: 4, healEveryMs: 1e9, random: () => 0.5 })
  const since = (n: number, at: number): Map<string, number> => new Map(Array.from({ length: n }, (_, i) => [`P${i}`, at]))
  assert.deepEqual(p.trim(100_000, since(12, 0)), [], '12 = 3 x degree is the ceiling')
  const out = p.trim(100_000, since(20, 0))
  assert.equal(out.length, 12, '20 → 8')
  assert.equal(new Set(out).size, 12)
  // young connections (a joiner syncing) are never closed: only the old ones go
  const mixed = since(10, 0)
  for (let i = 10; i < 20; i++) mixed.set(`P${i}`, 95_000)
  const cut = p.trim(100_000, mixed)
  assert.equal(cut.length, 10)
  assert.ok(cut.every(x => Number(x.slice(1)) < 10), cut.join(' '))
})

test('towards the degree: nothing for 2 s after the first connection, then one member per 500 ms', () => {
  const p = new DialPolicy({ degree: 4, healEveryMs: 1e9, random: () => 0.5 })
  const members = [t(1), t(2), t(3), t(4), t(5)]
  assert.equal(p.choose(0, new Set(), [seed], members).length, 6, 'alone: the seed and everyone')
  p.succeeded(seed.key, true)
  const one = new Set(['P9'])
  assert.equal(p.choose(100, one, [seed], members).length, 0, 'connected: the records come through the seed')
  assert.equal(p.choose(2099, one, [seed], members).length, 0)
  assert.equal(p.choose(2100, one, [seed], members).length, 1, '2 s after the first connection: one')
  assert.equal(p.choose(2350, one, [seed], members, 1).length, 0, 'then one per 500 ms')
  assert.equal(p.choose(2600, new Set(['P9', 'P1']), [seed], members).length, 1)
  assert.equal(p.choose(3100, new Set(['P9', 'P1', 'P2', 'P3']), [seed], members).length, 0, 'at the degree: none')
  // a seed never reached is still dialed at once, pacing or not
  const q = new DialPolicy({ degree: 4, healEveryMs: 1e9, random: () => 0.5 })
  assert.deepEqual(q.choose(0, one, [seed], members).map(x => x.key), [seed.key])
})
