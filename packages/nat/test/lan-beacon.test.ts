import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import dgram from 'node:dgram'
import type os from 'node:os'
import { broadcastAddress, lanBroadcastTargets, startLanBeacon } from '../src/lan-beacon.js'

describe('broadcastAddress', () => {
  it('computes the directed broadcast address', () => {
    assert.equal(broadcastAddress('192.0.2.7', '255.255.255.0'), '192.0.2.255')
    assert.equal(broadcastAddress('10.1.2.3', '255.0.0.0'), '10.255.255.255')
    assert.equal(broadcastAddress('198.18.5.130', '255.255.255.128'), '198.18.5.255')
    assert.equal(broadcastAddress('198.18.5.10', '255.255.255.252'), '198.18.5.11')
  })
  it('returns undefined for /31, /32, bad masks and non-IPv4', () => {
    assert.equal(broadcastAddress('192.0.2.1', '255.255.255.255'), undefined)
    assert.equal(broadcastAddress('192.0.2.1', '255.255.255.254'), undefined)
    assert.equal(broadcastAddress('192.0.2.1', '255.0.255.0'), undefined)
    assert.equal(broadcastAddress('fd00::1', 'ffff:ffff:ffff:ffff::'), undefined)
    assert.equal(broadcastAddress('nope', '255.255.255.0'), undefined)
  })
})

describe('lanBroadcastTargets', () => {
  const nic = (address: string, netmask: string, internal = false, family: 'IPv4' | 'IPv6' = 'IPv4'): os.NetworkInterfaceInfo =>
    ({ address, netmask, family, mac: '00:00:00:00:00:00', internal, cidr: null, ...(family === 'IPv6' ? { scopeid: 0 } : {}) }) as os.NetworkInterfaceInfo
  it('skips loopback, IPv6, excluded interfaces and point-to-point addresses', () => {
    const table = {
      lo: [nic('127.0.0.1', '255.0.0.0', true)],
      eth0: [nic('192.0.2.7', '255.255.255.0'), nic('fd00::7', 'ffff:ffff:ffff:ffff::', false, 'IPv6')],
      eth1: [nic('198.18.3.4', '255.255.0.0')],
      wgmesh0: [nic('100.96.0.1', '255.255.0.0')],
      docker0: [nic('172.17.0.1', '255.255.0.0')],
      ppp0: [nic('203.0.113.9', '255.255.255.255')]
    }
    assert.deepEqual(lanBroadcastTargets(['wgmesh0', /^docker/], table).map(t => [t.interface, t.broadcast]), [
      ['eth0', '192.0.2.255'], ['eth1', '198.18.255.255']
    ])
  })
})

describe('startLanBeacon (loopback, injected targets)', () => {
  it('sends payloads to the targets with TTL 1 and delivers what others send', async () => {
    const gotB: Array<{ data: string, port: number }> = []
    const b = await startLanBeacon({
      port: 0, bindAddress: '127.0.0.1', targets: () => [], intervalMs: 60_000,
      payload: () => new Uint8Array(0), onBeacon: (data, from) => { gotB.push({ data: Buffer.from(data).toString(), port: from.port }) }
    })
    let n = 0
    // a real socket that records the TTL in force at each send (the kernel puts it in the IP header)
    let ttl: number | undefined
    let broadcast = false
    const sentWithTtl: Array<number | undefined> = []
    const socketFactory = (type: 'udp4' | 'udp6'): dgram.Socket => {
      const s = dgram.createSocket(type)
      const setTTL = s.setTTL.bind(s)
      s.setTTL = (v: number) => { ttl = v; return setTTL(v) }
      const setBroadcast = s.setBroadcast.bind(s)
      s.setBroadcast = (v: boolean) => { broadcast = v; setBroadcast(v) }
      const send = s.send.bind(s) as (...args: unknown[]) => void
      s.send = ((...args: unknown[]) => { sentWithTtl.push(ttl); send(...args) }) as typeof s.send
      return s
    }
    const a = await startLanBeacon({
      port: 0, bindAddress: '127.0.0.1', targets: () => [{ address: '127.0.0.1', port: b.address().port }], intervalMs: 60_000,
      payload: () => new TextEncoder().encode(`hello-${n++}`), onBeacon: () => {}, socketFactory
    })
    try {
      await a.announce()
      const deadline = Date.now() + 2000
      while (gotB.length < 2 && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 10))
      assert.deepEqual(gotB.map(g => g.data).sort(), ['hello-0', 'hello-1'])
      assert.ok(gotB.every(g => g.port === a.address().port))
      assert.deepEqual(sentWithTtl, [1, 1], 'every beacon is sent with unicast TTL 1 (never routed past the first hop)')
      assert.equal(broadcast, true, 'broadcast enabled (subnet broadcast targets)')
    } finally {
      await a.close()
      await b.close()
    }
  })
})
