import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { canonicalCidr, canonicalIp, isLinkLocalV6 } from '../src/cidr.js'
import { canonicalEndpoint } from '../src/plan.js'

describe('cidr canonicalization', () => {
  it('canonicalizes IPv6 text per RFC 5952', () => {
    assert.equal(canonicalIp('FD12:3456:789A:0:0:0:0:1'), 'fd12:3456:789a::1')
    assert.equal(canonicalIp('2001:db8:0:0:1:0:0:1'), '2001:db8::1:0:0:1')
    assert.equal(canonicalIp('::'), '::')
    assert.equal(canonicalIp('::ffff:192.0.2.1'), '::ffff:c000:201')
    assert.equal(canonicalIp('2001:db8:1:2:3:4:5:0'), '2001:db8:1:2:3:4:5:0')
  })

  it('masks host bits only when asked, and adds host prefixes', () => {
    assert.equal(canonicalCidr('10.1.2.3/24', true), '10.1.2.0/24')
    assert.equal(canonicalCidr('10.1.2.3/24', false), '10.1.2.3/24')
    assert.equal(canonicalCidr('fd00::1:2/112', true), 'fd00::1:0/112')
    assert.equal(canonicalCidr('10.1.2.3', true), '10.1.2.3/32')
    assert.equal(canonicalCidr('fd00::1', false), 'fd00::1/128')
    assert.equal(canonicalCidr('0.0.0.0/0', true), '0.0.0.0/0')
  })

  it('leaves unparseable text lowercased', () => {
    assert.equal(canonicalCidr('NOT-AN-IP/8', true), 'not-an-ip/8')
    assert.equal(canonicalCidr('10.0.0.1/33', true), '10.0.0.1/33')
    assert.equal(canonicalIp('1:2:3:4:5:6:7:8:9'), '1:2:3:4:5:6:7:8:9')
  })

  it('recognizes fe80::/10 only', () => {
    assert.equal(isLinkLocalV6('fe80::1/64'), true)
    assert.equal(isLinkLocalV6('febf:ffff::1'), true)
    assert.equal(isLinkLocalV6('fec0::1'), false)
    assert.equal(isLinkLocalV6('169.254.1.1/16'), false)
  })

  it('canonicalizes endpoint hosts', () => {
    assert.equal(canonicalEndpoint('[FD00:0::1]:51820'), '[fd00::1]:51820')
    assert.equal(canonicalEndpoint('192.0.2.1:1'), '192.0.2.1:1')
    assert.equal(canonicalEndpoint('example.com'), 'example.com')
  })
})
