// Port mapping against a real gateway: Debian's miniupnpd (UPnP IGD v2 + NAT-PMP) running in
// the lab router r-nat1, driven by @wgmesh/nat's createPortMapper() inside nat1
// (test/lab/upnp/map-port.ts). Proves that a mapped port is reachable UNSOLICITED from the
// internet (pub1), that refresh() keeps it and unmap() removes it. Needs root and miniupnpd;
// FAILS (never skips) when they are missing.
// Library bugs of @achingbrain/nat-port-mapper 4.0.x: NAT-PMP unmap() deletes TCP, not UDP —
// port-mapping.ts works around it, so the test asserts the UDP mapping is gone. UPnP unmap()
// sends DeletePortMapping with an empty NewProtocol, which miniupnpd ignores — not worked
// around, so that test is a `todo` that really runs and fails until it is.
//   cd /work/main && node scripts/run-tests.mjs netns upnp
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { accessSync, constants as fsc, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { Lab, type LabProcess, type UpnpGateway } from '../lab/lab.js'

const UDP_PEER = fileURLToPath(new URL('../lab/udp-peer.mjs', import.meta.url))
const MAP_PORT = fileURLToPath(new URL('../lab/upnp/map-port.ts', import.meta.url))
const IGD_SOAP = fileURLToPath(new URL('../lab/upnp/igd-soap.mjs', import.meta.url))
const NATPMP = fileURLToPath(new URL('../lab/upnp/natpmp.mjs', import.meta.url))
const POLYFILLS = fileURLToPath(new URL('../../scripts/polyfills.mjs', import.meta.url))
const NODE_TS = [process.execPath, '--conditions=wgmesh-src', '--import', 'tsx', '--import', POLYFILLS]

async function waitFor<T> (what: string, cond: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 5000): Promise<T> {
  const end = Date.now() + timeoutMs
  for (;;) {
    const v = await cond()
    if (v !== undefined && v !== false) return v
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 25))
  }
}

function alive (pid: number): boolean {
  try { return !/^\S+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8')) } catch { return false }
}

function labNamespaces (prefix: string): string[] {
  return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n')
    .map(l => l.split(' ')[0] ?? '').filter(n => n.startsWith(prefix))
}

interface MapEvent {
  event: 'mapped' | 'refreshed' | 'unmapped' | 'error'
  op?: string
  message?: string
  ms?: number
  lease?: { method: string, externalAddress: string, externalPort: number, internalAddress: string, internalPort: number }
}

function events (p: LabProcess): MapEvent[] {
  return p.log().split('\n').filter(l => l.startsWith('{')).map(l => JSON.parse(l) as MapEvent)
}

/** wait for the n-th (1-based) JSON event of a map-port.ts process */
async function nthEvent (p: LabProcess, n: number, timeoutMs = 10_000): Promise<MapEvent> {
  return await waitFor(`event #${n} of ${p.label} (log: ${p.log()})`, () => {
    const ev = events(p)
    if (ev.length >= n) return ev[n - 1]
    if (p.exited) throw new Error(`${p.label} exited: ${p.log()}`)
    return undefined
  }, timeoutMs)
}

describe('UPnP IGD v2 / NAT-PMP port mapping through a real miniupnpd', () => {
  let lab: Lab
  let gw: UpnpGateway
  let seq = 0

  before(async () => {
    Lab.requireRoot()
    const mu = ['/usr/sbin/miniupnpd', '/usr/local/sbin/miniupnpd'].find(p => { try { accessSync(p, fsc.X_OK); return true } catch { return false } })
    if (mu === undefined) throw new Error('miniupnpd is not installed (apt-get install miniupnpd miniupnpd-nftables)')
    const t0 = Date.now()
    lab = await Lab.up({ public: 1, natted: 1, nat: 'cone' })
    const t1 = Date.now()
    gw = await lab.enableUpnp('nat1')
    console.log(`# lab up ${t1 - t0} ms, miniupnpd ready ${Date.now() - t1} ms`)
  })

  after(async () => {
    const pids = gw !== undefined ? [gw.pid, gw.stunPid] : []
    const prefix = lab?.prefix
    await lab?.down()
    for (const pid of pids) assert.equal(alive(pid), false, `process ${pid} must be gone after down()`)
    if (prefix !== undefined) assert.deepEqual(labNamespaces(prefix), [])
  })

  /** a UDP listener in nat1 (recorded PID) */
  async function listen (port: number): Promise<LabProcess> {
    const p = lab.spawn(`udp-nat1-${port}`, 'nat1', [process.execPath, UDP_PEER, String(port)])
    await waitFor(`listener on nat1:${port}`, () => p.log().includes(`ready ${port}`))
    return p
  }

  /** send one datagram from pub1 (fresh random source port, so a fresh conntrack entry) to the
   *  router's WAN address; true if the listener in nat1 received it from pub1's own address */
  async function probe (listener: LabProcess, port: number, timeoutMs: number): Promise<boolean> {
    const tag = `probe-${++seq}`
    await lab.run('pub1', [process.execPath, UDP_PEER, '--send', `${gw.wanIp}:${port}`, tag])
    const re = new RegExp(`^recv ${lab.host('pub1').ip.replace(/\./g, '\\.')}:\\d+ ${tag}$`, 'm')
    try {
      await waitFor(`${tag} at nat1:${port}`, () => re.test(listener.log()), timeoutMs)
      return true
    } catch { return false }
  }
  // generous: a loaded machine delays delivery, and a late probe must not read as "blocked"
  const arrives = async (l: LabProcess, port: number): Promise<boolean> => await probe(l, port, 10_000)
  const blocked = async (l: LabProcess, port: number): Promise<boolean> => !(await probe(l, port, 2000))

  /** Test cleanup only (not a product check): delete a UDP mapping with a correct raw request. */
  async function rawDelete (method: 'pmp' | 'upnp', port: number): Promise<void> {
    if ((await mappingsFor(port)).length === 0) return
    if (method === 'pmp') await lab.exec('nat1', [process.execPath, NATPMP, gw.lanIp, 'unmap', 'udp', String(port)])
    else await lab.exec('nat1', [process.execPath, IGD_SOAP, gw.descUrl, 'DeletePortMapping', 'NewRemoteHost=', `NewExternalPort=${port}`, 'NewProtocol=UDP'])
  }

  async function mappingsFor (port: number): Promise<string[]> {
    return (await lab.upnpStatus('nat1')).mappings.filter(m => m.includes(`dport ${port} `))
  }

  it('runs miniupnpd in r-nat1, serving an IGD v2 device description on the LAN only', async () => {
    const r = lab.routers.find(x => x.name === 'r-nat1')
    assert.ok(r)
    assert.equal(gw.router, 'r-nat1')
    assert.equal(gw.wanIp, r.wanIp)
    assert.equal(gw.lanIp, r.lanIp)
    assert.equal(gw.descUrl, `http://${r.lanIp}:${gw.httpPort}/rootDesc.xml`)
    assert.ok(alive(gw.pid) && alive(gw.stunPid))
    assert.match(gw.log(), /Port forwarding is now enabled/)
    const fetchJs = 'fetch(process.argv[1],{signal:AbortSignal.timeout(Number(process.argv[2]??2000))}).then(r=>r.text()).then(t=>process.stdout.write(t),e=>{console.error(String(e));process.exit(1)})'
    const desc = await lab.run('nat1', [process.execPath, '-e', fetchJs, gw.descUrl])
    assert.match(desc, /urn:schemas-upnp-org:device:InternetGatewayDevice:2/)
    assert.match(desc, /urn:schemas-upnp-org:service:WANIPConnection:2/)
    // the internet cannot talk to the IGD: HTTP (bound to lan) on the WAN address fails
    const fromInternet = await lab.exec('pub1', [process.execPath, '-e', fetchJs, `http://${gw.wanIp}:${gw.httpPort}/rootDesc.xml`, '700'])
    assert.notEqual(fromInternet.code, 0)
    assert.deepEqual((await lab.upnpStatus('nat1')), { enabled: true, mappings: [] })
  })

  it('NAT-PMP (the default first method): maps 51820 on the WAN address, reachable unsolicited; refresh keeps it; unmap() removes it', async () => {
    const port = 51820
    const l = await listen(port)
    assert.ok(await blocked(l, port), 'before mapping, unsolicited traffic must be dropped by the router')
    const m = lab.spawn('map-pmp', 'nat1', [...NODE_TS, MAP_PORT, '--gateway', gw.lanIp, '--port', String(port), '--ttl', '120'])
    try {
      const ev = await nthEvent(m, 1)
      assert.equal(ev.event, 'mapped', JSON.stringify(ev))
      assert.deepEqual(ev.lease, {
        method: 'pmp', externalAddress: gw.wanIp, externalPort: port, internalAddress: lab.host('nat1').ip, internalPort: port
      })
      console.log(`# NAT-PMP map ${ev.ms} ms`)
      assert.equal((await mappingsFor(port)).length, 1)
      assert.ok(await arrives(l, port), 'mapped port must be reachable from pub1')

      await m.kill('SIGUSR1')
      const rf = await nthEvent(m, 2)
      assert.equal(rf.event, 'refreshed', JSON.stringify(rf))
      assert.ok(await arrives(l, port), 'still reachable after refresh()')
      assert.equal((await mappingsFor(port)).length, 1, 'refresh must not add a second rule')

      await m.kill('SIGUSR2')
      const um = await nthEvent(m, 3)
      assert.equal(um.event, 'unmapped', JSON.stringify(um))
      console.log(`# NAT-PMP refresh ${rf.ms} ms, unmap ${um.ms} ms`)
      // @achingbrain/nat-port-mapper 4.0.x: PMPGateway.unmap(port, opts) re-uses map() without a
      // protocol, so it deletes TCP ("51820->... tcp lifetime=0s") and the UDP mapping stays.
      // port-mapping.ts passes protocol 'udp' through; this asserts the workaround still holds.
      const tcpDelete = new RegExp(`NAT-PMP port mapping request : ${port}->\\S+ tcp lifetime=0s`).test(gw.log())
      assert.deepEqual(await mappingsFor(port), [],
        `NAT-PMP unmap() must delete the UDP mapping${tcpDelete ? ' (the gateway saw a TCP delete: the port-mapping.ts workaround is broken)' : ''}`)
      assert.match(gw.log(), new RegExp(`NAT-PMP port mapping request : ${port}->\\S+ udp lifetime=0s`), 'unmap() sent a UDP lifetime-0 request')
      assert.ok(await blocked(l, port), 'after the mapping is deleted unsolicited traffic must be dropped again')
    } finally {
      await m.kill('SIGTERM')
      await l.kill('SIGTERM')
      await rawDelete('pmp', port)
    }
  })

  it('UPnP IGD v2 (SSDP discovery + AddAnyPortMapping): maps on the WAN address, reachable unsolicited; refresh keeps it; the gateway deletes it on a correct request', async () => {
    const port = 51821
    const l = await listen(port)
    assert.ok(await blocked(l, port))
    const m = lab.spawn('map-upnp', 'nat1', [...NODE_TS, MAP_PORT, '--gateway', gw.lanIp, '--port', String(port), '--ttl', '3600', '--methods', 'upnp'])
    try {
      const ev = await nthEvent(m, 1)
      assert.equal(ev.event, 'mapped', JSON.stringify(ev))
      assert.deepEqual(ev.lease, {
        method: 'upnp', externalAddress: gw.wanIp, externalPort: port, internalAddress: lab.host('nat1').ip, internalPort: port
      })
      console.log(`# UPnP map ${ev.ms} ms`)
      assert.match(gw.log(), /WANIPConnection:2#AddAnyPortMapping/)
      assert.equal((await mappingsFor(port)).length, 1)
      assert.ok(await arrives(l, port), 'mapped port must be reachable from pub1')

      await m.kill('SIGUSR1')
      const rf = await nthEvent(m, 2)
      assert.equal(rf.event, 'refreshed', JSON.stringify(rf))
      assert.ok(await arrives(l, port), 'still reachable after refresh()')
      assert.equal((await mappingsFor(port)).length, 1)
      console.log(`# UPnP refresh ${rf.ms} ms`)

      // the gateway side of unmap: a DeletePortMapping with NewProtocol=UDP removes the mapping
      const del = JSON.parse(await lab.run('nat1', [process.execPath, IGD_SOAP, gw.descUrl, 'DeletePortMapping',
        'NewRemoteHost=', `NewExternalPort=${port}`, 'NewProtocol=UDP'])) as { status: number }
      assert.equal(del.status, 200)
      assert.deepEqual(await mappingsFor(port), [])
      assert.ok(await blocked(l, port), 'after the mapping is deleted unsolicited traffic must be dropped again')
    } finally {
      await m.kill('SIGTERM')
      await l.kill('SIGTERM')
      await rawDelete('upnp', port)
    }
  })

  it('UPnP unmap() removes the mapping', {
    todo: '@achingbrain/nat-port-mapper 4.0.x sends DeletePortMapping with an empty NewProtocol and swallows the 402; ' +
      'miniupnpd keeps the mapping for its lease (>= 3600 s). port-mapping.ts does not work around it (yet).'
  }, async () => {
    const port = 51822
    const l = await listen(port)
    const m = lab.spawn('map-upnp-unmap', 'nat1', [...NODE_TS, MAP_PORT, '--gateway', gw.lanIp, '--port', String(port), '--ttl', '3600', '--methods', 'upnp'])
    try {
      const ev = await nthEvent(m, 1)
      assert.equal(ev.event, 'mapped', JSON.stringify(ev))
      assert.equal((await mappingsFor(port)).length, 1)
      await m.kill('SIGUSR2')
      const um = await nthEvent(m, 2)
      assert.equal(um.event, 'unmapped', JSON.stringify(um))
      assert.match(gw.log(), /WANIPConnection:2#DeletePortMapping/, 'unmap() must send DeletePortMapping')
      assert.deepEqual(await mappingsFor(port), [], 'UPnP unmap() must delete the mapping')
      assert.ok(await blocked(l, port), 'after unmap() unsolicited traffic must be dropped again')
    } finally {
      await m.kill('SIGTERM')
      await l.kill('SIGTERM')
      await rawDelete('upnp', port)
    }
  })
})
