import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type os from 'node:os'
import type { Gateway, MapPortOptions, PortMapping, UPnPNAT } from '@achingbrain/nat-port-mapper'
import { createPortMapper, localAddressFor, parseProcNetRoute } from '../src/port-mapping.js'
import type { NatPortMapperClient } from '../src/port-mapping.js'

interface Call { op: string, port?: number, host?: string, opts?: MapPortOptions }

function fakeGateway (calls: Call[], behaviour: { map?: (opts?: MapPortOptions) => Promise<PortMapping>, host?: string } = {}): Gateway {
  return {
    id: 'fake', host: behaviour.host ?? '192.0.2.1', port: 5000, family: 'IPv4',
    async stop () { calls.push({ op: 'stop' }) },
    async map (port: number, host: string, opts?: MapPortOptions) {
      calls.push({ op: 'map', port, host, ...(opts !== undefined ? { opts } : {}) })
      if (behaviour.map !== undefined) return await behaviour.map(opts)
      return { externalHost: '198.51.100.20', externalPort: port, internalHost: host, internalPort: port, protocol: 'UDP' }
    },
    async * mapAll () {},
    async unmap (port: number) { calls.push({ op: 'unmap', port }) },
    async externalIp () { return '198.51.100.20' }
  }
}

const hang = async (opts?: MapPortOptions): Promise<never> => await new Promise((_resolve, reject) => {
  opts?.signal?.addEventListener('abort', () => { reject(opts.signal?.reason) })
})

function fakeClient (pmp: Gateway | undefined, upnp: Gateway[]): NatPortMapperClient & { pmpCalls: string[] } {
  const pmpCalls: string[] = []
  return {
    pmpCalls,
    pmpNat (ip: string) { pmpCalls.push(ip); if (pmp === undefined) throw new Error('no pmp in this test'); return pmp },
    upnpNat (): UPnPNAT {
      return {
        async * findGateways () { for (const g of upnp) yield g },
        async getGateway () { const g = upnp[0]; if (g === undefined) throw new Error('no device'); return g }
      }
    }
  }
}

const nics = (): NodeJS.Dict<os.NetworkInterfaceInfo[]> => ({
  eth0: [{ address: '192.0.2.7', netmask: '255.255.255.0', family: 'IPv4', mac: '00:00:00:00:00:00', internal: false, cidr: '192.0.2.7/24' }]
})

describe('port mapping wrapper (fake nat-port-mapper)', () => {
  it('maps via NAT-PMP first, with ttl in seconds and autoRefresh off; refresh and unmap use fresh gateways', async () => {
    const calls: Call[] = []
    const client = fakeClient(fakeGateway(calls), [])
    const mapper = createPortMapper({ client, networkInterfaces: nics, defaultGateway: async () => '192.0.2.1' })
    const lease = await mapper.map({ localPort: 51820, protocol: 'UDP', ttlS: 600 })
    assert.equal(lease.method, 'pmp')
    assert.equal(lease.externalAddress, '198.51.100.20')
    assert.equal(lease.externalPort, 51820)
    assert.equal(lease.internalAddress, '192.0.2.7')
    const first = calls[0]
    assert.equal(first?.op, 'map')
    assert.equal(first?.host, '192.0.2.7')
    assert.equal(first?.opts?.ttl, 600)
    assert.equal(first?.opts?.autoRefresh, false)
    assert.equal(first?.opts?.protocol, 'udp')
    assert.equal(calls[1]?.op, 'stop') // the PMP socket is released right away
    await lease.refresh()
    await lease.unmap()
    assert.deepEqual(calls.map(c => c.op), ['map', 'stop', 'map', 'stop', 'unmap', 'stop'])
    assert.deepEqual(client.pmpCalls, ['192.0.2.1', '192.0.2.1', '192.0.2.1'])
  })

  it('falls back to UPnP when NAT-PMP does not answer, passing ttl in ms', async () => {
    const pmpCalls: Call[] = []
    const upnpCalls: Call[] = []
    const client = fakeClient(fakeGateway(pmpCalls, { map: hang }), [fakeGateway(upnpCalls)])
    const mapper = createPortMapper({ client, networkInterfaces: nics, defaultGateway: async () => '192.0.2.1' })
    const lease = await mapper.map({ localPort: 51820, protocol: 'UDP', ttlS: 3600, pmpTimeoutMs: 50 })
    assert.equal(lease.method, 'upnp')
    assert.equal(pmpCalls.at(-1)?.op, 'stop')
    assert.equal(upnpCalls[0]?.opts?.ttl, 3_600_000)
    assert.equal(upnpCalls[0]?.opts?.protocol, 'UDP')
    await lease.unmap()
    assert.deepEqual(upnpCalls.map(c => c.op), ['map', 'unmap', 'stop'])
  })

  it('GatewayNotFoundError when nothing answers', async () => {
    const client = fakeClient(fakeGateway([], { map: hang }), [])
    const mapper = createPortMapper({ client, networkInterfaces: nics, defaultGateway: async () => '192.0.2.1' })
    await assert.rejects(mapper.map({ localPort: 51820, protocol: 'UDP', ttlS: 60, pmpTimeoutMs: 30 }), { name: 'GatewayNotFoundError' })
    const noGw = createPortMapper({ client: fakeClient(undefined, []), networkInterfaces: nics, defaultGateway: async () => undefined })
    await assert.rejects(noGw.map({ localPort: 51820, protocol: 'UDP', ttlS: 60 }), { name: 'GatewayNotFoundError' })
  })

  it('PortMappingError (with cause) when the gateway refuses; the gateway is stopped', async () => {
    const calls: Call[] = []
    const refusal = Object.assign(new Error('Not Authorized/Refused'), { code: 2 })
    const client = fakeClient(undefined, [fakeGateway(calls, { map: async () => { throw refusal } })])
    const mapper = createPortMapper({ client, networkInterfaces: nics, defaultGateway: async () => undefined })
    await assert.rejects(mapper.map({ localPort: 51820, protocol: 'UDP', ttlS: 60 }), (err: Error & { method?: string }) => {
      assert.equal(err.name, 'PortMappingError')
      assert.equal(err.method, 'upnp')
      assert.equal(err.cause, refusal)
      return true
    })
    assert.deepEqual(calls.map(c => c.op), ['map', 'stop'])
  })

  it('rejects a mapping with a garbage external address, and bad arguments', async () => {
    const client = fakeClient(fakeGateway([], { map: async () => ({ externalHost: '', externalPort: 51820, internalHost: '192.0.2.2', internalPort: 51820, protocol: 'UDP' as const }) }), [])
    const mapper = createPortMapper({ client, networkInterfaces: nics, defaultGateway: async () => '192.0.2.1' })
    await assert.rejects(mapper.map({ localPort: 51820, protocol: 'UDP', ttlS: 60 }), { name: 'PortMappingError' })
    await assert.rejects(mapper.map({ localPort: 0, protocol: 'UDP', ttlS: 60 }), { name: 'InvalidArgumentError' })
    await assert.rejects(mapper.map({ localPort: 1, protocol: 'TCP' as 'UDP', ttlS: 60 }), { name: 'InvalidArgumentError' })
  })

  it('a PMP gateway that emits error does not crash the process', async () => {
    const { EventEmitter } = await import('node:events')
    const gw = Object.assign(new EventEmitter(), fakeGateway([], {
      map: async () => { setImmediate(() => gw.emit('error', new Error('send ENETUNREACH'))); return await new Promise(() => {}) }
    }))
    const mapper = createPortMapper({ client: fakeClient(gw, []), networkInterfaces: nics, defaultGateway: async () => '192.0.2.1' })
    await assert.rejects(mapper.map({ localPort: 51820, protocol: 'UDP', ttlS: 60, methods: ['pmp'] }), { name: 'PortMappingError' })
  })
})

describe('gateway helpers', () => {
  it('parseProcNetRoute picks the lowest-metric default route with a gateway', () => {
    const text = [
      'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT',
      'wgmesh0\t00000000\t00000000\t0001\t0\t0\t0\t00000000\t0\t0\t0',
      'eth1\t00000000\t010200C0\t0003\t0\t0\t200\t00000000\t0\t0\t0',
      'eth0\t00000000\t010012C6\t0003\t0\t0\t100\t00000000\t0\t0\t0',
      'eth0\t000012C6\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0'
    ].join('\n')
    assert.equal(parseProcNetRoute(text), '198.18.0.1')
    assert.equal(parseProcNetRoute(text, ['eth0']), '192.0.2.1')
    assert.equal(parseProcNetRoute('Iface\tDestination\n'), undefined)
  })

  it('localAddressFor picks our address on the gateway subnet', () => {
    assert.equal(localAddressFor('192.0.2.1', nics()), '192.0.2.7')
    assert.equal(localAddressFor('10.0.0.1', nics()), undefined)
  })
})
