/**
 * LAN beacons over IPv6 (issue 11), the socket layer: which links are beaconed on (pure), and
 * a second, IPv6-only socket beside the IPv4 one — its own payload per family, hop limit 1,
 * the same size bound and the same rate limiters, off without a word when the host has no
 * IPv6 for it. Real sockets on ::1 with injected targets (the link-local group itself is
 * exercised in test/netns/ipv6-lan.test.ts).
 */
import assert from 'node:assert/strict'
import dgram from 'node:dgram'
import type os from 'node:os'
import { describe, it } from 'node:test'
import { v6Scope } from '@wgmesh/core'
import { LAN_BEACON_GROUP6, MAX_BEACON_BYTES, lanMulticastLinks6, startLanBeacon, withoutZone, type LanBeacon } from '../src/lan-beacon.js'

const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }
async function until (what: string, cond: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`)
    await sleep(5)
  }
}

describe('lanMulticastLinks6', () => {
  const nic = (address: string, family: 'IPv4' | 'IPv6', internal = false): os.NetworkInterfaceInfo =>
    ({ address, netmask: family === 'IPv4' ? '255.255.255.0' : 'ffff:ffff:ffff:ffff::', family, mac: '00:00:00:00:00:00', internal, cidr: null, ...(family === 'IPv6' ? { scopeid: 0 } : {}) }) as os.NetworkInterfaceInfo
  it('every non-internal, non-excluded interface with an IPv6 link-local address, with those addresses', () => {
    const table = {
      lo: [nic('127.0.0.1', 'IPv4', true), nic('::1', 'IPv6', true)],
      eth0: [nic('2001:db8:1::2', 'IPv6'), nic('fe80::2', 'IPv6')],
      eth1: [nic('192.0.2.7', 'IPv4')], // IPv4 only: no IPv6 beacons there
      eth2: [nic('fd00::9', 'IPv6')], // no link-local (IPv6 not up on it): none
      wgmesh0: [nic('fe80::77', 'IPv6'), nic('fdaa::1', 'IPv6')],
      br0: [nic('fe80::a', 'IPv6'), nic('fe80::b', 'IPv6')]
    }
    assert.deepEqual(lanMulticastLinks6(['wgmesh0', 'lo'], table), [
      { interface: 'eth0', linkLocal: ['fe80::2'] },
      { interface: 'br0', linkLocal: ['fe80::a', 'fe80::b'] }
    ])
    assert.deepEqual(lanMulticastLinks6([/^br/, 'eth0', 'wgmesh0'], table), [])
  })
  it('the group is link-local scope (ff02::/16: never forwarded by a router)', () => {
    assert.equal(v6Scope(LAN_BEACON_GROUP6), 'multicast')
    assert.match(LAN_BEACON_GROUP6, /^ff02:/)
    assert.equal(withoutZone(`${LAN_BEACON_GROUP6}%eth0`), LAN_BEACON_GROUP6)
    assert.equal(withoutZone('2001:db8::1'), '2001:db8::1')
  })
})

describe('startLanBeacon over IPv6 (::1, injected targets)', () => {
  it('sends each family its own payload (hop limit 1 on IPv6) and delivers IPv6 beacons as family 6', async () => {
    const got: Array<{ data: string, family: number, address: string }> = []
    const rx = await startLanBeacon({
      port: 0, bindAddress: '127.0.0.1', bindAddress6: '::1', targets: () => [], targets6: () => [], intervalMs: 60_000,
      payload: () => undefined, onBeacon: (data, from) => { got.push({ data: Buffer.from(data).toString(), family: from.family, address: from.address }) }
    })
    const hops: Record<string, number[]> = { udp4: [], udp6: [] }
    const socketFactory = (type: 'udp4' | 'udp6'): dgram.Socket => {
      const s = dgram.createSocket(type)
      const setTTL = s.setTTL.bind(s)
      s.setTTL = (v: number) => { hops[type]!.push(v); return setTTL(v) }
      const setMulticastTTL = s.setMulticastTTL.bind(s)
      s.setMulticastTTL = (v: number) => { hops[type]!.push(v); return setMulticastTTL(v) }
      return s
    }
    let with6 = true
    const tx = await startLanBeacon({
      port: 0, bindAddress: '127.0.0.1', bindAddress6: '::1', intervalMs: 60_000, socketFactory,
      targets: () => [{ address: '127.0.0.1', port: rx.address().port }],
      targets6: () => [{ address: '::1', port: rx.address6()!.port }],
      payload: (family) => family === 6 && !with6 ? undefined : new TextEncoder().encode(`beacon-v${family}`),
      onBeacon: () => {}
    })
    try {
      assert.ok(tx.address6() !== undefined && rx.address6() !== undefined, 'both run an IPv6 socket')
      await until('both families', () => got.length >= 2)
      assert.deepEqual(got.map(g => `${g.family} ${g.data} ${g.address}`).sort(), ['4 beacon-v4 127.0.0.1', '6 beacon-v6 ::1'])
      assert.deepEqual(hops.udp6, [1, 1], 'IPv6: unicast and multicast hop limit 1')
      assert.deepEqual(hops.udp4, [1])
      // no IPv6 payload (no address worth naming): only the IPv4 beacon goes out
      with6 = false
      got.length = 0
      await tx.announce()
      await sleep(100)
      assert.deepEqual(got.map(g => g.family), [4])
    } finally {
      await tx.close()
      await rx.close()
    }
  })

  it('the IPv6 socket has the same size bound and the same (shared) rate limiters', async () => {
    const got: number[] = []
    const rx = await startLanBeacon({
      port: 0, bindAddress: '127.0.0.1', bindAddress6: '::1', targets: () => [], targets6: () => [], intervalMs: 60_000,
      ratePerSecond: 1, burst: 3, now: () => 0, // a frozen clock: no refill
      payload: () => undefined, onBeacon: (data) => { got.push(data.length) }
    })
    const s6 = dgram.createSocket('udp6')
    await new Promise<void>(resolve => { s6.bind(0, '::1', resolve) })
    try {
      const port = rx.address6()!.port
      for (const n of [MAX_BEACON_BYTES + 1, 0, 10, 10, 10, 10, 10]) s6.send(new Uint8Array(n), port, '::1')
      await until('the flood counted', () => { const s = rx.stats(); return s.oversized + s.delivered + s.rateLimited >= 7 })
      const s = rx.stats()
      assert.deepEqual({ oversized: s.oversized, delivered: s.delivered, rateLimited: s.rateLimited }, { oversized: 2, delivered: 3, rateLimited: 2 })
      assert.deepEqual(got, [10, 10, 10])
    } finally {
      s6.close()
      await rx.close()
    }
    // one global budget for both sockets: 2 beacons over IPv4 and 2 over IPv6 against a global 3
    const both = await startLanBeacon({
      port: 0, bindAddress: '127.0.0.1', bindAddress6: '::1', targets: () => [], targets6: () => [], intervalMs: 60_000,
      ratePerSecond: 100, globalRatePerSecond: 3, now: () => 0, payload: () => undefined, onBeacon: () => {}
    })
    const a4 = dgram.createSocket('udp4')
    const a6 = dgram.createSocket('udp6')
    try {
      for (let i = 0; i < 2; i++) { a4.send(new Uint8Array(8), both.address().port, '127.0.0.1'); a6.send(new Uint8Array(8), both.address6()!.port, '::1') }
      await until('4 beacons counted', () => { const s = both.stats(); return s.delivered + s.rateLimited >= 4 })
      assert.deepEqual([both.stats().delivered, both.stats().rateLimited], [3, 1])
    } finally {
      a4.close(); a6.close()
      await both.close()
    }
  })

  it('port 0 without IPv6 options: no IPv6 socket (a beacon to an ephemeral port reaches nobody)', async () => {
    const b = await startLanBeacon({ port: 0, bindAddress: '127.0.0.1', targets: () => [], intervalMs: 60_000, payload: () => undefined, onBeacon: () => {} })
    try {
      assert.equal(b.address6(), undefined)
      assert.equal(b.stats().links6, 0)
    } finally { await b.close() }
  })

  it('no IPv6 for the socket: one debug line, the IPv4 beacon carries on', async () => {
    const debug: string[] = []
    const errors: Error[] = []
    let payloads = 0
    const got: string[] = []
    const rx4 = await startLanBeacon({
      port: 0, bindAddress: '127.0.0.1', ipv6: false, targets: () => [], intervalMs: 60_000, payload: () => undefined,
      onBeacon: (d) => { got.push(Buffer.from(d).toString()) }
    })
    let b: LanBeacon | undefined
    try {
      // an address this host does not have stands for "no IPv6 here" (EADDRNOTAVAIL, like EAFNOSUPPORT on a host without IPv6)
      b = await startLanBeacon({
        port: 0, bindAddress: '127.0.0.1', bindAddress6: '2001:db8::dead', intervalMs: 60_000,
        targets: () => [{ address: '127.0.0.1', port: rx4.address().port }], targets6: () => [{ address: '::1', port: 9 }],
        payload: (f) => { payloads++; return new TextEncoder().encode(`v${f}`) }, onBeacon: () => {},
        onDebug: (msg) => { debug.push(msg) }, onError: (err) => { errors.push(err) }
      })
      await until('the IPv4 beacon', () => got.length === 1)
      assert.equal(b.address6(), undefined)
      assert.deepEqual(debug, ['LAN beacons over IPv6 off: no IPv6 socket'])
      assert.deepEqual(errors, [])
      assert.deepEqual(got, ['v4'])
      assert.equal(payloads, 1, 'no IPv6 payload built')
    } finally {
      await b?.close()
      await rx4.close()
    }
  })
})
