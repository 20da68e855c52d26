import { test } from 'node:test'
import assert from 'node:assert/strict'
import { canonicalIP, cidrContainsText, formatCidr, parseCidr, parseEndpoint, parseIPv4, parseIPv6 } from '../src/ip.js'

test('IPv4 parse rejects junk and leading zeros', () => {
  assert.equal(parseIPv4('100.96.0.1'), 0x64600001n)
  for (const bad of ['1.2.3', '1.2.3.4.5', '256.1.1.1', '01.2.3.4', 'a.b.c.d', '']) assert.equal(parseIPv4(bad), undefined, bad)
})

test('IPv6 canonical form (RFC 5952)', () => {
  assert.equal(canonicalIP('FD00:0:0:0:0:0:0:1'), 'fd00::1')
  assert.equal(canonicalIP('2001:db8:0:0:1:0:0:1'), '2001:db8::1:0:0:1')
  assert.equal(canonicalIP('::'), '::')
  assert.equal(parseIPv6('1::2::3'), undefined)
  assert.equal(parseIPv6('12345::'), undefined)
})

test('CIDR parsing clears host bits and checks containment', () => {
  const c = parseCidr('100.96.7.9/16')
  assert.equal(formatCidr(c), '100.96.0.0/16')
  assert.ok(cidrContainsText(c, '100.96.255.254'))
  assert.ok(!cidrContainsText(c, '100.97.0.1'))
  assert.ok(!cidrContainsText(c, 'fd00::1'))
  assert.throws(() => parseCidr('100.96.0.0'), { name: 'InvalidAddressError' })
  assert.throws(() => parseCidr('100.96.0.0/33'), { name: 'InvalidAddressError' })
})

test('endpoints parse in both families', () => {
  assert.deepEqual(parseEndpoint('198.18.1.1:51820'), { host: '198.18.1.1', port: 51820, family: 4 })
  assert.deepEqual(parseEndpoint('[FD00::1]:1'), { host: 'fd00::1', port: 1, family: 6 })
  for (const bad of ['198.18.1.1', '198.18.1.1:0', '198.18.1.1:65536', 'host:80', '[fd00::1:80']) assert.equal(parseEndpoint(bad), undefined, bad)
})

test('parseEndpoint is memoized: the same text gives the same frozen object, a bad one stays undefined, the memo stays bounded', () => {
  const a = parseEndpoint('198.18.3.3:51820')
  assert.equal(parseEndpoint('198.18.3.3:51820'), a, 'one object per text')
  assert.ok(Object.isFrozen(a), 'shared, so frozen')
  assert.equal(parseEndpoint('198.18.3.3:0'), undefined)
  assert.equal(parseEndpoint('198.18.3.3:0'), undefined, 'a bad text is remembered as bad')
  // far more texts than the memo holds (2048): each still parses right
  for (let i = 0; i < 5000; i++) {
    const port = 1 + (i % 65535)
    assert.deepEqual(parseEndpoint(`198.18.${i >> 8}.${i & 255}:${port}`), { host: `198.18.${i >> 8}.${i & 255}`, port, family: 4 })
  }
  assert.deepEqual(parseEndpoint('198.18.3.3:51820'), { host: '198.18.3.3', port: 51820, family: 4 }, 'after the memo was cleared')
})

test('IPv6 with an embedded IPv4 tail', () => {
  assert.equal(canonicalIP('::ffff:192.0.2.1'), '::ffff:c000:201')
  assert.equal(parseIPv6('::ffff:192.0.2.256'), undefined)
  assert.equal(parseIPv6('1.2.3.4'), undefined)
})
