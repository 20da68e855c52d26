import { test } from 'node:test'
import assert from 'node:assert/strict'
import { claimDecision, electGateways, gatewayAllowedIps, type ClaimInput, type GatewayMember, type GroupState } from '../src/gateway.js'

function permutations<T> (xs: T[]): T[][] {
  if (xs.length <= 1) return [xs]
  return xs.flatMap((x, i) => permutations([...xs.slice(0, i), ...xs.slice(i + 1)]).map(p => [x, ...p]))
}

const gw = (nodeId: string, priority: number, over: Partial<GatewayMember> = {}): GatewayMember =>
  ({ nodeId, name: nodeId.toLowerCase(), group: 'office', priority, routes: ['10.1.0.0/16'], ...over })

const activeOf = (live: GatewayMember[], group = 'office'): string | undefined => electGateways(live).get(group)?.active

test('election: the same active and the same ranking for every order of the members', () => {
  const members = [gw('a', 100), gw('b', 200), gw('c', 200), gw('d', 150, { since: 9000 }), gw('e', 150, { since: 4000 })]
  for (const p of permutations(members)) {
    const s = electGateways(p).get('office')!
    assert.equal(s.active, 'e')
    assert.equal(s.activeSince, 4000)
    assert.deepEqual(s.members.map(m => m.nodeId), ['e', 'd', 'b', 'c', 'a'])
  }
})

test('election: a claimer beats a non-claimer of higher priority', () => {
  assert.equal(activeOf([gw('a', 1000), gw('b', 0, { since: 5 })]), 'b')
  assert.equal(activeOf([gw('a', 1000), gw('b', 0)]), 'a')
})

test('election: priority first, then the earlier claim, then the nodeId (ordinal)', () => {
  assert.equal(activeOf([gw('a', 100, { since: 1000 }), gw('b', 150, { since: 5000 })]), 'b')
  assert.equal(activeOf([gw('a', 100, { since: 2000 }), gw('b', 100, { since: 1000 })]), 'b')
  assert.equal(activeOf([gw('b', 100, { since: 1000 }), gw('a', 100, { since: 1000 })]), 'a')
  assert.equal(activeOf([gw('b', 100), gw('a', 100)]), 'a')
  // upper case sorts before lower case in ordinal order (a locale would say otherwise)
  assert.equal(activeOf([gw('a', 100), gw('B', 100)]), 'B')
})

test('election: one state per group, active routes canonical, members without routes left out', () => {
  const groups = electGateways([
    gw('x', 500, { routes: [] }),
    gw('y', 100, { routes: ['10.2.0.0/16', '10.1.0.0/16', '2001:DB8::/32'] }),
    gw('z', 300, { group: 'lab', routes: ['172.16.0.0/12'] })
  ])
  assert.deepEqual([...groups.keys()], ['lab', 'office'])
  const office = groups.get('office')!
  assert.equal(office.active, 'y')
  assert.equal(office.activeSince, undefined)
  assert.deepEqual(office.routes, ['10.1.0.0/16', '10.2.0.0/16', '2001:db8::/32'])
  assert.deepEqual(office.members.map(m => m.nodeId), ['y'])
  assert.equal(groups.get('lab')!.active, 'z')
  assert.deepEqual(electGateways([]), new Map())
})

const decide = (over: Partial<ClaimInput>): ReturnType<typeof claimDecision> => claimDecision({
  self: gw('s', 100), selfClaiming: false, policy: 'preferred', live: [], now: 50_000, aliveForMs: 60_000, preemptDelayMs: 10_000, ...over
})

test('claimDecision: claim when nobody of the group claims and self wins the election', () => {
  assert.equal(decide({ live: [] }), 'claim')
  assert.equal(decide({ live: [gw('a', 50), gw('t', 100)] }), 'claim')
  assert.equal(decide({ live: [gw('a', 150)] }), 'keep', 'a better member will claim')
  assert.equal(decide({ live: [gw('a', 100)] }), 'keep', 'equal priority: the lower nodeId claims')
  // claims and members of other groups do not count
  assert.equal(decide({ live: [gw('a', 900, { group: 'lab', since: 1 })] }), 'claim')
  // a member without routes can neither claim nor block
  assert.equal(decide({ live: [gw('a', 900, { routes: [] })] }), 'claim')
  assert.equal(decide({ self: gw('s', 100, { routes: [] }) }), 'keep')
  assert.equal(decide({ self: gw('s', 100, { routes: [], since: 5 }), selfClaiming: true }), 'release')
})

test('claimDecision: a claimer releases to a claimer that beats it, keeps otherwise', () => {
  const me = gw('s', 100, { since: 20_000 })
  assert.equal(decide({ self: me, selfClaiming: true, live: [gw('a', 150, { since: 30_000 })] }), 'release')
  assert.equal(decide({ self: me, selfClaiming: true, live: [gw('a', 100, { since: 10_000 })] }), 'release')
  assert.equal(decide({ self: me, selfClaiming: true, live: [gw('z', 100, { since: 20_000 })] }), 'keep', 'tie: the lower nodeId stays')
  assert.equal(decide({ self: me, selfClaiming: true, live: [gw('a', 100, { since: 30_000 })] }), 'keep')
  assert.equal(decide({ self: me, selfClaiming: true, live: [gw('a', 900)] }), 'keep', 'a non-claimer never takes over by itself')
  assert.equal(decide({ self: me, selfClaiming: true, policy: 'sticky', live: [gw('a', 150, { since: 30_000 })] }), 'release')
  // a claim not yet in a record dates from now
  assert.equal(decide({ self: gw('s', 100), selfClaiming: true, live: [gw('a', 100, { since: 49_999 })] }), 'release')
  assert.equal(decide({ self: gw('s', 100), selfClaiming: true, live: [gw('a', 100, { since: 50_001 })] }), 'keep')
})

test('claimDecision: preemption only in preferred policy, only strictly higher, only after the hold-down', () => {
  const live = [gw('b', 150, { since: 1000 }), gw('c', 100)]
  const a = gw('a', 200)
  assert.equal(decide({ self: a, live, aliveForMs: 10_000 }), 'claim')
  assert.equal(decide({ self: a, live, aliveForMs: 9_999 }), 'keep')
  assert.equal(decide({ self: a, live, policy: 'sticky', aliveForMs: 1e9 }), 'keep')
  assert.equal(decide({ self: gw('a', 150), live }), 'keep', 'equal priority never preempts')
  assert.equal(decide({ self: a, live: [...live, gw('d', 300, { since: 2000 })] }), 'keep', 'higher than every claimer')
})

test('gatewayAllowedIps: other groups\' routes to their active, own group, self, local subnets and exits left out', () => {
  const state = (group: string, active: string, routes: string[]): GroupState =>
    ({ group, active, routes, members: [gw(active, 100, { group, routes })] })
  const groups = new Map<string, GroupState>([
    ['office', state('office', 'o1', ['10.1.0.0/16', '192.168.1.0/24', '2001:DB8::/32'])],
    ['home', state('home', 'h1', ['10.9.0.0/16'])],
    ['lab', state('lab', 'me', ['172.16.0.0/12'])],
    ['exit-a', state('exit-a', 'e1', ['::/0', '0.0.0.0/0'])],
    ['exit-b', state('exit-b', 'e2', ['0.0.0.0/0', '198.51.100.0/24'])]
  ])
  const opts = { self: 'me', ownGroups: new Set(['home']), localAddrs: ['192.168.1.20', '203.0.113.7'] }
  assert.deepEqual(gatewayAllowedIps(groups, opts), new Map([
    ['e2', ['198.51.100.0/24']],
    ['o1', ['10.1.0.0/16', '2001:db8::/32']]
  ]))
  assert.deepEqual(gatewayAllowedIps(groups, { ...opts, exitGroup: 'exit-a' }), new Map([
    ['e1', ['0.0.0.0/0', '::/0']],
    ['e2', ['198.51.100.0/24']],
    ['o1', ['10.1.0.0/16', '2001:db8::/32']]
  ]))
  assert.deepEqual(gatewayAllowedIps(groups, { ...opts, exitGroup: 'exit-b', localAddrs: [] }), new Map([
    ['e2', ['0.0.0.0/0', '198.51.100.0/24']],
    ['o1', ['10.1.0.0/16', '192.168.1.0/24', '2001:db8::/32']]
  ]))
  assert.deepEqual(gatewayAllowedIps(groups, { ...opts, ownGroups: new Set(['home', 'office', 'exit-b']), exitGroup: 'exit-b' }), new Map())
})
