import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  cidrsOverlap, isExitRoute, parseAdvertisedRoutes, parseRouteSpec, resolveRouteConflicts, sortRoutes, type RouteClaim
} from '../src/routes.js'
import { MAX_ROUTES } from '../src/record.js'

const MESH = ['100.64.0.0/10', 'fd12:3456:789a::/48']

/** The error of a spec that must be refused. */
function refused (s: string): string {
  const r = parseRouteSpec(s, MESH)
  assert.equal(r.ok, false, `${s} must be refused`)
  return r.ok ? '' : r.error
}

/** Every ordering of `xs`. */
function permutations<T> (xs: T[]): T[][] {
  if (xs.length <= 1) return [xs]
  return xs.flatMap((x, i) => permutations([...xs.slice(0, i), ...xs.slice(i + 1)]).map(p => [x, ...p]))
}

test('routes of both families are accepted in canonical form', () => {
  assert.deepEqual(parseRouteSpec('10.1.0.0/24', MESH), { ok: true, cidr: '10.1.0.0/24', exit: false })
  assert.deepEqual(parseRouteSpec(' 192.168.7.0/24 ', MESH), { ok: true, cidr: '192.168.7.0/24', exit: false })
  assert.deepEqual(parseRouteSpec('10.2.3.4/32', MESH), { ok: true, cidr: '10.2.3.4/32', exit: false })
  assert.deepEqual(parseRouteSpec('10.0.0.0/08', MESH), { ok: true, cidr: '10.0.0.0/8', exit: false })
  assert.deepEqual(parseRouteSpec('2001:DB8:1:0:0::/64', MESH), { ok: true, cidr: '2001:db8:1::/64', exit: false })
  assert.deepEqual(parseRouteSpec('2001:0db8:0000:0000:0000:0000:0000:0001/128', MESH), { ok: true, cidr: '2001:db8::1/128', exit: false })
  // just outside the mesh ranges
  assert.deepEqual(parseRouteSpec('100.128.0.0/16', MESH), { ok: true, cidr: '100.128.0.0/16', exit: false })
  assert.deepEqual(parseRouteSpec('fd12:3456:789b::/48', MESH), { ok: true, cidr: 'fd12:3456:789b::/48', exit: false })
})

test('0.0.0.0/0 and ::/0 are exit routes, exempt from the mesh and reserved range checks', () => {
  assert.deepEqual(parseRouteSpec('0.0.0.0/0', MESH), { ok: true, cidr: '0.0.0.0/0', exit: true })
  assert.deepEqual(parseRouteSpec('::/0', MESH), { ok: true, cidr: '::/0', exit: true })
  assert.deepEqual(parseRouteSpec('0:0::0/0', MESH), { ok: true, cidr: '::/0', exit: true })
  assert.equal(isExitRoute('0.0.0.0/0'), true)
  assert.equal(isExitRoute('::/0'), true)
  assert.equal(isExitRoute('0.0.0.0/1'), false)
  assert.equal(isExitRoute('junk'), false)
})

test('not a CIDR: the error names the input and shows the form wanted', () => {
  for (const bad of ['10.1.0.0/', '10.1.0/24', 'office', '10.1.0.0/abc', '1.2.3.4/-1', '']) {
    const e = refused(bad)
    assert.match(e, /is not a CIDR \(want e\.g\. 10\.1\.0\.0\/24 or 2001:db8:1::\/64\)$/, bad)
    assert.ok(e.startsWith(bad === '' ? "''" : bad), e)
  }
  assert.equal(refused('10.1.0.0/33'), '10.1.0.0/33 has a prefix length over 32: an IPv4 prefix is /0 to /32')
  assert.equal(refused('2001:db8::/129'), '2001:db8::/129 has a prefix length over 128: an IPv6 prefix is /0 to /128')
})

test('a missing prefix length is refused with the host route and a subnet as the fix', () => {
  assert.equal(refused('10.1.0.5'), '10.1.0.5 has no prefix length: write 10.1.0.5/32 for this one host, or the subnet it is in (want e.g. 10.1.0.0/24 or 2001:db8:1::/64)')
  assert.match(refused('2001:db8::5'), /^2001:db8::5 has no prefix length: write 2001:db8::5\/128 for this one host/)
})

test('host bits set: the error suggests the network address', () => {
  assert.equal(refused('10.1.0.5/24'), '10.1.0.5/24 has host bits set: did you mean 10.1.0.0/24?')
  assert.equal(refused('2001:DB8:1::1/64'), '2001:DB8:1::1/64 has host bits set: did you mean 2001:db8:1::/64?')
  // prefix length 0 with an address is host bits too, not a quiet exit route
  assert.equal(refused('1.2.3.4/0'), '1.2.3.4/0 has host bits set: did you mean 0.0.0.0/0?')
  assert.equal(refused('2001:db8::/0'), '2001:db8::/0 has host bits set: did you mean ::/0?')
})

test('routes overlapping a mesh range are refused, in either direction, with the range named', () => {
  assert.equal(refused('100.64.5.0/24'), '100.64.5.0/24 overlaps the mesh range 100.64.0.0/10: advertise only subnets outside the mesh\'s own addresses')
  assert.match(refused('100.0.0.0/8'), /^100\.0\.0\.0\/8 overlaps the mesh range 100\.64\.0\.0\/10:/)
  assert.match(refused('fd12:3456:789a:1::/64'), /^fd12:3456:789a:1::\/64 overlaps the mesh range fd12:3456:789a::\/48:/)
  assert.match(refused('fd00::/8'), /overlaps the mesh range fd12:3456:789a::\/48/)
  // other mesh ranges, other verdicts
  assert.equal(parseRouteSpec('100.64.5.0/24', ['10.0.0.0/8']).ok, true)
  assert.match((parseRouteSpec('10.9.0.0/16', ['10.0.0.0/8']) as { error: string }).error, /overlaps the mesh range 10\.0\.0\.0\/8/)
})

test('loopback, link-local and multicast are refused, also when a route covers them', () => {
  const cases: Array<[string, string]> = [
    ['127.0.0.0/8', 'the loopback range 127.0.0.0/8'],
    ['127.1.0.0/16', 'the loopback range 127.0.0.0/8'],
    ['::1/128', 'the loopback range ::1/128'],
    ['169.254.0.0/16', 'the link-local range 169.254.0.0/16'],
    ['169.254.10.0/24', 'the link-local range 169.254.0.0/16'],
    ['fe80::/64', 'the link-local range fe80::/10'],
    ['224.0.0.0/4', 'the multicast range 224.0.0.0/4'],
    ['239.1.2.0/24', 'the multicast range 224.0.0.0/4'],
    ['ff02::/16', 'the multicast range ff00::/8'],
    ['112.0.0.0/4', 'the loopback range 127.0.0.0/8'], // 112–127: loopback included
    ['192.0.0.0/2', 'the multicast range 224.0.0.0/4']
  ]
  for (const [spec, range] of cases) {
    assert.equal(refused(spec), `${spec} overlaps ${range}, which no gateway can route: advertise a subnet outside it`)
  }
})

test('cidrsOverlap: containment either way, disjoint, and different families never', () => {
  assert.equal(cidrsOverlap('10.0.0.0/8', '10.1.2.0/24'), true)
  assert.equal(cidrsOverlap('10.1.2.0/24', '10.0.0.0/8'), true)
  assert.equal(cidrsOverlap('10.1.2.0/24', '10.1.2.0/24'), true)
  assert.equal(cidrsOverlap('10.1.2.0/24', '10.1.3.0/24'), false)
  assert.equal(cidrsOverlap('10.1.2.0/23', '10.1.3.0/24'), true)
  assert.equal(cidrsOverlap('2001:db8::/32', '2001:db8:5::/48'), true)
  assert.equal(cidrsOverlap('2001:db8::/32', '2001:db9::/32'), false)
  assert.equal(cidrsOverlap('0.0.0.0/0', '::/0'), false)
  assert.equal(cidrsOverlap('::/0', '::ffff:a00:0/104'), true)
  assert.equal(cidrsOverlap('junk', '10.0.0.0/8'), false)
})

test('parseAdvertisedRoutes: deduplicated, sorted IPv4 first then by address then prefix', () => {
  const r = parseAdvertisedRoutes(['2001:db8:2::/48', '10.2.0.0/16', '::/0', '10.1.0.0/16', '2001:DB8:2::/48', '10.1.0.0/24', '0.0.0.0/0', '9.0.0.0/8'], MESH)
  assert.deepEqual(r, { ok: true, routes: ['0.0.0.0/0', '9.0.0.0/8', '10.1.0.0/16', '10.1.0.0/24', '10.2.0.0/16', '::/0', '2001:db8:2::/48'] })
  assert.deepEqual(parseAdvertisedRoutes([], MESH), { ok: true, routes: [] })
})

test('parseAdvertisedRoutes: every error at once', () => {
  const r = parseAdvertisedRoutes(['10.1.0.5/24', '10.2.0.0/16', 'nope', '127.0.0.0/8'], MESH)
  assert.deepEqual(r, {
    ok: false,
    errors: [
      '10.1.0.5/24 has host bits set: did you mean 10.1.0.0/24?',
      'nope is not a CIDR (want e.g. 10.1.0.0/24 or 2001:db8:1::/64)',
      '127.0.0.0/8 overlaps the loopback range 127.0.0.0/8, which no gateway can route: advertise a subnet outside it'
    ]
  })
})

test(`parseAdvertisedRoutes: at most ${MAX_ROUTES} distinct routes (duplicates do not count)`, () => {
  const many = Array.from({ length: MAX_ROUTES }, (_, i) => `10.${i}.0.0/16`)
  const ok = parseAdvertisedRoutes([...many, ...many], MESH)
  assert.equal(ok.ok && ok.routes.length, MAX_ROUTES)
  const over = parseAdvertisedRoutes([...many, '192.168.0.0/24'], MESH)
  assert.deepEqual(over, { ok: false, errors: [`${MAX_ROUTES + 1} routes advertised, at most ${MAX_ROUTES} fit in a record: merge neighbouring subnets into larger ones`] })
})

test('sortRoutes canonicalises, drops junk and orders by family, address, prefix', () => {
  assert.deepEqual(sortRoutes(['FD00::/8', '10.0.0.0/16', 'x', '10.0.0.0/8', '10.0.0.1/8', '9.9.9.9/32']),
    ['9.9.9.9/32', '10.0.0.0/8', '10.0.0.0/16', 'fd00::/8'])
})

const claim = (nodeId: string, group: string, routes: string[]): RouteClaim => ({ nodeId, group, routes })

test('conflicts: the group whose name sorts first keeps overlapping routes, for every input order', () => {
  const members = [
    claim('n1', 'office', ['10.1.0.0/16', '192.168.1.0/24']),
    claim('n2', 'office', ['10.1.0.0/16']),
    claim('n3', 'lab', ['10.1.5.0/24', '172.16.0.0/12']),
    claim('n4', 'zoo', ['10.0.0.0/8', '192.168.0.0/16', '198.51.100.0/24']),
    claim('n5', 'Office', ['192.168.1.128/25'])
  ]
  // ordinal order: 'Office' < 'lab' < 'office' < 'zoo' (upper case sorts first, unlike a locale's)
  const want = {
    accepted: new Map<string, string[]>([
      ['n1', []],
      ['n2', []],
      ['n3', ['10.1.5.0/24', '172.16.0.0/12']],
      ['n4', ['198.51.100.0/24']],
      ['n5', ['192.168.1.128/25']]
    ]),
    rejected: [
      { nodeId: 'n1', cidr: '10.1.0.0/16', reason: 'overlap', with: 'lab' },
      { nodeId: 'n1', cidr: '192.168.1.0/24', reason: 'overlap', with: 'Office' },
      { nodeId: 'n2', cidr: '10.1.0.0/16', reason: 'overlap', with: 'lab' },
      { nodeId: 'n4', cidr: '10.0.0.0/8', reason: 'overlap', with: 'lab' },
      { nodeId: 'n4', cidr: '192.168.0.0/16', reason: 'overlap', with: 'Office' }
    ]
  }
  for (const p of permutations(members)) {
    const got = resolveRouteConflicts(p)
    assert.deepEqual(got, want, p.map(m => m.nodeId).join(','))
    assert.deepEqual([...got.accepted.keys()], ['n1', 'n2', 'n3', 'n4', 'n5'])
  }
})

test('conflicts: a refused route blocks nobody; disjoint groups keep everything', () => {
  const r = resolveRouteConflicts([
    claim('a', 'alpha', ['10.0.0.0/16']),
    claim('b', 'beta', ['10.0.0.0/8']), // refused: overlaps alpha
    claim('c', 'gamma', ['10.5.0.0/16']) // overlaps only beta's refused route
  ])
  assert.deepEqual(r.accepted, new Map([['a', ['10.0.0.0/16']], ['b', []], ['c', ['10.5.0.0/16']]]))
  assert.deepEqual(r.rejected, [{ nodeId: 'b', cidr: '10.0.0.0/8', reason: 'overlap', with: 'alpha' }])
  const d = resolveRouteConflicts([claim('a', 'alpha', ['10.0.0.0/16', '2001:db8::/32']), claim('b', 'beta', ['10.1.0.0/16', '2001:db9::/32'])])
  assert.deepEqual(d.rejected, [])
  assert.deepEqual(d.accepted.get('b'), ['10.1.0.0/16', '2001:db9::/32'])
})

test('conflicts: exit routes are exempt, two groups may both offer an exit', () => {
  const members = [
    claim('e1', 'exit-a', ['0.0.0.0/0', '::/0']),
    claim('e2', 'exit-b', ['0.0.0.0/0']),
    claim('g', 'branch', ['10.1.0.0/16', '2001:db8::/32'])
  ]
  for (const p of permutations(members)) {
    const r = resolveRouteConflicts(p)
    assert.deepEqual(r.rejected, [])
    assert.deepEqual(r.accepted, new Map([['e1', ['0.0.0.0/0', '::/0']], ['e2', ['0.0.0.0/0']], ['g', ['10.1.0.0/16', '2001:db8::/32']]]))
  }
})

test('conflicts: members of one group may advertise different, overlapping sets', () => {
  const members = [
    claim('m1', 'office', ['10.0.0.0/8']),
    claim('m2', 'office', ['10.1.0.0/16', '10.2.0.0/16']),
    claim('m3', 'office', ['10.1.0.0/16', '192.168.0.0/24'])
  ]
  for (const p of permutations(members)) {
    const r = resolveRouteConflicts(p)
    assert.deepEqual(r.rejected, [])
    assert.deepEqual(r.accepted, new Map([['m1', ['10.0.0.0/8']], ['m2', ['10.1.0.0/16', '10.2.0.0/16']], ['m3', ['10.1.0.0/16', '192.168.0.0/24']]]))
  }
})
