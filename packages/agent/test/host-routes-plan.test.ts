import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import {
  EXIT_FWMARK, EXIT_TABLE, RULE_PREF_PEERS, ROUTE_PROTO, exitRules, forwardingRuleset, nftTableName, peerRuleDiff, routeDiff
} from '../src/host-routes-plan.js'

describe('routeDiff', () => {
  it('adds what is wanted and missing, deletes only routes marked as ours', () => {
    const have = [
      { dst: '10.1.0.0/24', protocol: ROUTE_PROTO },
      { dst: '10.2.0.0/24', protocol: String(ROUTE_PROTO) }, // as `ip -j` prints it
      { dst: '10.3.0.0/24', protocol: 'static' }, // an admin's route on our interface: not ours
      { dst: '100.64.0.0/10', protocol: 'kernel' }
    ]
    assert.deepEqual(routeDiff(have, 4, ['10.1.0.0/24', '10.9.0.0/16', '2001:db8::/64', '0.0.0.0/0']), { add: ['10.9.0.0/16'], del: ['10.2.0.0/24'] })
  })
  it('per family; host routes and "default" read back in CIDR form', () => {
    assert.deepEqual(routeDiff([{ dst: '2001:db8::1', protocol: ROUTE_PROTO }], 6, ['2001:db8::1/128', '10.0.0.0/8']), { add: [], del: [] })
    assert.deepEqual(routeDiff([{ dst: 'default', protocol: ROUTE_PROTO }], 4, []), { add: [], del: ['0.0.0.0/0'] })
  })
})

describe('forwardingRuleset', () => {
  const base = { iface: 'wg.mesh-0', routes: ['10.1.0.0/24', '2001:db8:5::/64'], exit4: false, exit6: false, masquerade: true, flipped: [] as string[] }
  it('forwards from the mesh to the advertised subnets only, replies back, masquerades', () => {
    const r = forwardingRuleset(base, false)
    assert.ok(r.startsWith(`table inet ${nftTableName('wg.mesh-0')} {`))
    assert.equal(nftTableName('wg.mesh-0'), 'wgmesh_wg_mesh_0')
    assert.match(r, /set routes4 \{ type ipv4_addr; flags interval; elements = \{ 10\.1\.0\.0\/24 \} \}/)
    assert.match(r, /set routes6 \{ type ipv6_addr; flags interval; elements = \{ 2001:db8:5::\/64 \} \}/)
    assert.match(r, /iifname "wg\.mesh-0" oifname != "wg\.mesh-0" ip daddr @routes4 accept/)
    assert.match(r, /iifname "wg\.mesh-0" drop/)
    assert.match(r, /oifname "wg\.mesh-0" ct state established,related accept\n {4}oifname "wg\.mesh-0" drop/)
    assert.match(r, /masquerade/)
    assert.doesNotMatch(r, /nfproto/, 'no exit rule')
    assert.doesNotMatch(r, /^delete/)
  })
  it('replaces an existing table atomically; no elements line for an empty set; exit and flipped interfaces', () => {
    const r = forwardingRuleset({ ...base, routes: [], exit4: true, masquerade: false, flipped: ['eth1', 'wg.mesh-0', '*'] }, true)
    assert.ok(r.startsWith('delete table inet wgmesh_wg_mesh_0\n'))
    assert.match(r, /set routes4 \{ type ipv4_addr; flags interval; \}/)
    assert.match(r, /meta nfproto ipv4 accept/)
    assert.doesNotMatch(r, /nfproto ipv6/)
    assert.match(r, /iifname "eth1" drop/)
    assert.doesNotMatch(r, /iifname "wg\.mesh-0" drop\n.*iifname "wg\.mesh-0" drop/s)
    assert.match(r, /iifname != "wg\.mesh-0" oifname != "wg\.mesh-0" drop/, 'conf/all switched on: nothing new between non-mesh interfaces')
    assert.doesNotMatch(r, /postrouting/)
  })
  it('interface names cannot break out of the quoted string', () => {
    assert.ok(forwardingRuleset({ ...base, iface: 'a"b' }, false).includes('"a\\"b"'))
  })
})

describe('exit policy routing', () => {
  it('peers to main first, then main without default routes, then the exit table for unmarked packets', () => {
    const rules = exitRules(['198.18.1.3'])
    assert.deepEqual(rules[0], ['to', '198.18.1.3', 'lookup', 'main', 'pref', String(RULE_PREF_PEERS)])
    assert.deepEqual(rules[1], ['table', 'main', 'suppress_prefixlength', '0', 'pref', String(RULE_PREF_PEERS + 1)])
    assert.deepEqual(rules[2], ['not', 'fwmark', String(EXIT_FWMARK), 'table', String(EXIT_TABLE), 'pref', String(RULE_PREF_PEERS + 2)])
  })
  it('peer rules: only ours (by priority) are compared', () => {
    const have = [{ priority: RULE_PREF_PEERS, dst: '198.18.1.3' }, { priority: RULE_PREF_PEERS, dst: '198.18.1.9' }, { priority: 100, dst: '198.18.1.4' }]
    assert.deepEqual(peerRuleDiff(have, ['198.18.1.3', '198.18.1.4']), { add: ['198.18.1.4'], del: ['198.18.1.9'] })
  })
})

describe('checkGatewayHost', () => {
  it('a gateway without the nft command is refused before it starts, saying what to install', async () => {
    const { checkGatewayHost } = await import('../src/host-routes.js')
    if (process.getuid?.() !== 0) return // /proc/sys is writable for root only; the first check would fire first
    assert.throws(() => { checkGatewayHost({ PATH: '/nonexistent' }) }, /needs the nft command \(package nftables\)/)
    assert.doesNotThrow(() => { checkGatewayHost({ PATH: '/usr/sbin:/usr/bin:/sbin:/bin' }) })
  })
})
