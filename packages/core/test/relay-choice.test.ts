/**
 * Family-aware relay choice (issue 11): a relay joins an IPv6-only end and an IPv4-only end
 * only when it reaches each over a family that end has; both ends pick the same one whatever
 * the order of the ends and of the records; each end reaches it in its own family.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  chooseRelay, endpointFamilies, noCommonFamily, relayEligible, relayFamilies, relayLegHost, unmapV4
} from '../src/relay.js'
import type { NodeRecord } from '../src/types.js'
import { recordOf, testNode } from './fixtures.js'

const node = (label: string, over: Partial<NodeRecord>): NodeRecord => recordOf(testNode(label), over)
const V4 = (i: number): string => `198.18.1.${i}:51820`
const V6 = (i: number): string => `[2001:db8:1::${i}]:51820`

// the ends
const v6only = node('v6only', { nat: 'public', endpoints: [V6(2)] })
const v4only = node('v4only', { nat: 'cone', endpoints: ['192.0.2.2:51820', V4(3)] })
const dualEnd = node('dual-end', { nat: 'symmetric', endpoints: [V4(4), V6(4)] })
// the relays
const dual = node('dual', { relay: true, nat: 'public', endpoints: [V4(1), V6(1)] })
const dual2 = node('dual2', { relay: true, nat: 'public', endpoints: [V4(5), V6(5)] })
const r4 = node('r4', { relay: true, nat: 'public', endpoints: [V4(6)] })
const r6 = node('r6', { relay: true, nat: 'public', endpoints: [V6(7)] })
/** IPv4 behind a cone NAT, a global IPv6 address: relays (auto: public on IPv6) for IPv6 legs only. */
const natted4 = node('natted4', { relay: true, nat: 'cone', endpoints: ['192.0.2.8:51820', V4(8), V6(8)] })

function permutations<T> (xs: T[]): T[][] {
  if (xs.length <= 1) return [xs]
  return xs.flatMap((x, i) => permutations([...xs.slice(0, i), ...xs.slice(i + 1)]).map(rest => [x, ...rest]))
}

/** The choice for {a, b} over every order of the candidates and both orders of the ends: one answer, or a failure naming the orders that differ. */
function onlyChoice (a: NodeRecord, b: NodeRecord, candidates: NodeRecord[]): string | undefined {
  const answers = new Set<string>()
  for (const order of permutations(candidates)) {
    answers.add(chooseRelay(a, b, order)?.name ?? 'none')
    answers.add(chooseRelay(b, a, order)?.name ?? 'none')
  }
  assert.equal(answers.size, 1, `one answer for every order, got ${[...answers].join(', ')}`)
  const x = [...answers][0]!
  return x === 'none' ? undefined : x
}

test('families: an end has those of its endpoints (IPv6 only when global); a relay serves IPv4 when public, IPv6 at a global address', () => {
  assert.deepEqual([...endpointFamilies(v6only)], [6])
  assert.deepEqual([...endpointFamilies(v4only)], [4])
  assert.deepEqual([...endpointFamilies(dualEnd)].sort(), [4, 6])
  assert.deepEqual([...endpointFamilies(node('ula', { endpoints: ['[fd00::1]:51820', '[fe80::1]:51820', V4(9)] }))], [4], 'ULA and link-local are no family to reach')
  assert.deepEqual([...relayFamilies(dual)].sort(), [4, 6])
  assert.deepEqual([...relayFamilies(r4)], [4])
  assert.deepEqual([...relayFamilies(r6)], [6])
  assert.deepEqual([...relayFamilies(natted4)], [6], 'IPv4 behind a NAT: IPv6 legs only')
  assert.deepEqual([...relayFamilies(node('n', { relay: true, nat: 'cone', endpoints: [V4(10)] }))], [], 'NATted, IPv4 only: no relay')
  assert.deepEqual([...relayFamilies(node('u', { relay: true, nat: 'unknown', endpoints: [V4(11), V6(11)] }))], [], 'not classified yet: no relay')
  assert.deepEqual([...relayFamilies(node('w', { nat: 'public', endpoints: [V4(12), V6(12)] }))], [], 'unwilling')
  assert.deepEqual([...relayFamilies({ ...dual, leaving: true })], [], 'leaving')
  assert.equal(relayEligible(r6), true)
  assert.equal(relayEligible(node('n6', { relay: true, nat: 'unknown', endpoints: [V6(13)] })), false)
})

test('a v6-only and a v4-only end share no family; any other pair does (or is unknown)', () => {
  assert.equal(noCommonFamily(v6only, v4only), true)
  assert.equal(noCommonFamily(v4only, v6only), true)
  assert.equal(noCommonFamily(v6only, dualEnd), false)
  assert.equal(noCommonFamily(v4only, dualEnd), false)
  assert.equal(noCommonFamily(v4only, node('v4b', { endpoints: [V4(14)] })), false)
  assert.equal(noCommonFamily(v6only, node('none', { endpoints: [] })), false, 'no endpoints advertised: nothing is known')
})

test('v6-only ↔ v4-only: only a relay reaching both families is chosen, the same one for every order of records and ends', () => {
  const all = [dual, r4, r6, natted4]
  assert.equal(onlyChoice(v6only, v4only, all), 'dual')
  // two relays fit: the hash picks one, and every order agrees on it
  const two = onlyChoice(v6only, v4only, [dual, dual2, r4, r6, natted4])
  assert.ok(two === 'dual' || two === 'dual2', String(two))
  // a family-blind choice would have taken a one-family relay for some pairs: the family-aware
  // one never does, for any pair
  let blind = 0
  for (let i = 0; i < 30; i++) {
    const a = node(`a${i}`, { endpoints: [V6(100 + i)], nat: 'public' })
    const b = node(`b${i}`, { endpoints: [V4(100 + i)], nat: 'cone' })
    const relays = [r4, r6, natted4, dual2, dual]
    assert.ok([dual.name, dual2.name].includes(chooseRelay(a, b, relays)?.name ?? 'none'), `pair ${i}: a dual-stack relay`)
    if (![dual.name, dual2.name].includes(chooseRelay(a.nodeId, b.nodeId, relays)?.name ?? 'none')) blind++
  }
  assert.ok(blind > 0, 'by ids alone (families unknown), some pairs get a one-family relay')
})

test('no eligible relay when the families do not fit', () => {
  assert.equal(onlyChoice(v6only, v4only, [r4, r6, natted4]), undefined, 'each relay reaches one end only')
  assert.equal(onlyChoice(v4only, node('v4c', { endpoints: [V4(15)], nat: 'symmetric' }), [r6, natted4]), undefined, 'IPv4 pair, IPv6-only relays')
  assert.equal(onlyChoice(v6only, node('v6c', { endpoints: [V6(16)], nat: 'cone' }), [r4]), undefined, 'IPv6 pair, an IPv4-only relay')
})

test('one-family pairs use the relays of their family; ends given as ids count any family', () => {
  const v4b = node('v4b', { endpoints: [V4(17)], nat: 'symmetric' })
  assert.equal(onlyChoice(v4only, v4b, [r6, natted4, r4]), 'r4')
  const v6b = node('v6b', { endpoints: [V6(18)], nat: 'cone' })
  const six = onlyChoice(v6only, v6b, [r4, r6, natted4])
  assert.ok(six === 'r6' || six === 'natted4', `a relay NATted on IPv4 serves IPv6 legs: ${String(six)}`)
  assert.equal(onlyChoice(dualEnd, v4only, [r6, r4]), 'r4', 'a dual-stack end goes by the other end')
  assert.equal(chooseRelay(v6only.nodeId, v4only.nodeId, [r4])?.name, 'r4', 'families unknown (ids): any relay')
  assert.equal(chooseRelay(v6only, v4only, [v6only, v4only, { ...dual, nodeId: v6only.nodeId }]), undefined, 'never an end of the pair')
})

test('each end reaches the relay in its own family: WireGuard\'s endpoint when advertised, else the first of its family', () => {
  assert.equal(relayLegHost(dual, new Set([6])), '2001:db8:1::1', 'an IPv6-only end: the relay\'s IPv6 address')
  assert.equal(relayLegHost(dual, new Set([4])), '198.18.1.1', 'an IPv4-only end: the relay\'s IPv4 address')
  assert.equal(relayLegHost(dual, new Set([4, 6])), '198.18.1.1', 'dual-stack: the relay\'s first')
  assert.equal(relayLegHost(dual, new Set()), '198.18.1.1', 'families unknown: the relay\'s first')
  assert.equal(relayLegHost(dual, new Set([4, 6]), V6(1)), '2001:db8:1::1', 'where the tunnel to the relay works')
  assert.equal(relayLegHost(dual, new Set([6]), V4(1)), '2001:db8:1::1', 'WireGuard\'s endpoint of a family we lack is not taken')
  assert.equal(relayLegHost(dual, new Set([4]), '198.18.9.9:40000'), '198.18.1.1', 'an endpoint the relay does not advertise (another relay\'s port) is not taken')
  assert.equal(relayLegHost(natted4, new Set([4, 6]), V4(8)), '2001:db8:1::8', 'a relay NATted on IPv4 is reached over IPv6')
  assert.equal(relayLegHost(r6, new Set([4])), undefined, 'no family fits')
  assert.equal(relayLegHost(node('x', { endpoints: [V4(19)], nat: 'public' }), new Set([4])), undefined, 'not a relay')
})

test('v4-mapped sources are compared as the IPv4 texts records carry', () => {
  assert.equal(unmapV4('::ffff:198.18.1.3'), '198.18.1.3')
  assert.equal(unmapV4('::FFFF:198.18.1.3'), '198.18.1.3')
  assert.equal(unmapV4('198.18.1.3'), '198.18.1.3')
  assert.equal(unmapV4('2001:db8:1::3'), '2001:db8:1::3')
  assert.equal(unmapV4('::ffff:c612:103'), '::ffff:c612:103', 'not the dotted form a socket reports: left as it is')
  assert.equal(unmapV4('::ffff:'), '::ffff:')
})
