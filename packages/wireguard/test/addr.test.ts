import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { parseAddrShow, parseLinkShow } from '../src/addr.js'

describe('parseAddrShow', () => {
  it('returns inet and global inet6 addresses, skipping link-local', () => {
    const text = [
      '7: wgmesh0    inet 100.96.3.4/16 scope global wgmesh0\\       valid_lft forever preferred_lft forever',
      '7: wgmesh0    inet6 fdab:cdef:1234::5/48 scope global \\       valid_lft forever preferred_lft forever',
      '7: wgmesh0    inet6 fe80::1c2d:3eff:fe4f:5a6b/64 scope link \\       valid_lft forever preferred_lft forever',
      '7: wgmesh0    inet6 febf::1/64 scope link \\       valid_lft forever preferred_lft forever',
      ''
    ].join('\n')
    assert.deepEqual(parseAddrShow(text), ['100.96.3.4/16', 'fdab:cdef:1234::5/48'])
  })

  it('returns [] for an interface without addresses and adds a host prefix when none is printed', () => {
    assert.deepEqual(parseAddrShow(''), [])
    assert.deepEqual(parseAddrShow('7: wg0    inet 10.0.0.1 peer 10.0.0.2/32 scope global wg0\\'), ['10.0.0.1/32'])
  })

  it('throws IpOutputParseError when inet has no address', () => {
    assert.throws(() => parseAddrShow('7: wg0    inet'), { name: 'IpOutputParseError' })
  })
})

describe('parseLinkShow', () => {
  it('reads mtu and the UP flag (WireGuard reports operstate UNKNOWN when up)', () => {
    const up = parseLinkShow('7: wgmesh0: <POINTOPOINT,NOARP,UP,LOWER_UP> mtu 1420 qdisc noqueue state UNKNOWN mode DEFAULT group default qlen 1000\\    link/none \n')
    assert.deepEqual(up, { name: 'wgmesh0', flags: ['POINTOPOINT', 'NOARP', 'UP', 'LOWER_UP'], mtu: 1420, up: true, operState: 'UNKNOWN' })
    const down = parseLinkShow('8: wg1: <POINTOPOINT,NOARP> mtu 1280 qdisc noop state DOWN mode DEFAULT group default qlen 1000\\    link/none')
    assert.equal(down.up, false)
    assert.equal(down.mtu, 1280)
    assert.equal(down.operState, 'DOWN')
  })

  it('drops an @peer suffix from the name', () => {
    assert.equal(parseLinkShow('9: veth0@if10: <BROADCAST,UP> mtu 1500 qdisc noqueue state UP').name, 'veth0')
  })

  it('throws IpOutputParseError on text that is not a link line', () => {
    assert.throws(() => parseLinkShow('Device "wg0" does not exist.'), { name: 'IpOutputParseError' })
    assert.throws(() => parseLinkShow(''), { name: 'IpOutputParseError' })
    assert.throws(() => parseLinkShow('7: wg0: <UP> qdisc noqueue'), { name: 'IpOutputParseError', message: /mtu/ })
  })
})
