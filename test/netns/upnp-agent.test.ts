/**
 * The agent with a real IGD (Debian's miniupnpd) in its router: it obtains a mapping of its
 * WireGuard port, advertises it first, and a peer behind another symmetric NAT — a pair that
 * could never punch through — reaches it directly through the mapping. On exit the mapping
 * is removed.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { Lab } from '../lab/lab.js'
import { WgmeshLab } from './wgmesh-lab.js'

let lab: Lab
let mesh: WgmeshLab
before(async () => {
  Lab.requireRoot()
  lab = await Lab.up({ public: 1, natted: 2, nat: 'symmetric' })
  mesh = new WgmeshLab(lab)
})
after(async () => {
  await lab?.down()
  mesh?.cleanup()
})

test('a UPnP/NAT-PMP mapped port gives a symmetric-NAT pair a direct path; the mapping goes on exit', async () => {
  const gw = await lab.enableUpnp('nat1')
  await mesh.start('pub1', 'up', ['--keepalive', '2'])
  const key = `${mesh.node('pub1').stateDir}/mesh.key`
  for (const h of ['nat1', 'nat2']) await mesh.start(h, 'join', ['--peer', lab.host('pub1').ip, '--mesh-key-file', key, '--keepalive', '2'])
  let mapped = ''
  await mesh.waitFor('nat1 advertises a mapped endpoint on its router\'s WAN address', async () => {
    const i = await mesh.tryInfo('nat1')
    if (i === undefined) return false
    mapped = (i as unknown as { endpoints: string[] }).endpoints.find(e => e.startsWith(`${gw.wanIp}:`)) ?? ''
    return mapped !== '' && (await lab.upnpStatus('nat1')).mappings.length > 0
  }, 60_000, 300)
  const t0 = Date.now()
  await mesh.waitFor('nat1↔nat2 direct (both symmetric: only the mapping makes it possible)', async () => {
    const a = (await mesh.tryInfo('nat1'))?.peers.find(p => p.name === 'nat2')
    const b = (await mesh.tryInfo('nat2'))?.peers.find(p => p.name === 'nat1')
    return a?.path === 'direct' && b?.path === 'direct'
  }, 60_000, 300)
  console.log(`# mapped ${mapped}; symmetric pair direct ${Date.now() - t0} ms after the mapping was advertised`)
  const b = (await mesh.info('nat2')).peers.find(p => p.name === 'nat1')!
  assert.equal(b.endpoint, mapped, 'nat2 reaches nat1 at the mapped endpoint')
  // the counters on the internet bridge, not the agent's report, decide: a burst nat2→nat1 goes
  // straight between the two routers (both ways), and pub1 (the only possible relay) carries none of it
  const BURST = 100
  const SIZE = 1400
  const CARRIED = BURST * SIZE * 0.9
  const n1 = gw.wanIp
  const n2 = lab.host('nat2').publicIp
  const relay = lab.host('pub1').ip
  await lab.zeroFlows()
  const ping = await lab.exec('nat2', ['ping', '-n', '-q', '-c', String(BURST), '-s', String(SIZE), '-i', '0.01', '-W', '5', (await mesh.info('nat1')).ipv4], { timeoutMs: 30_000 })
  const received = Number(/(\d+) received/.exec(ping.stdout)?.[1] ?? 0)
  assert.ok(received >= BURST * 0.95, `the burst gets through: ${ping.stdout}`)
  const flows = await lab.flows()
  const bytes = (src: string, dst: string): number => flows.filter(f => f.src === src && f.dst === dst).reduce((n, f) => n + f.bytes, 0)
  const [there, back] = [bytes(n2, n1), bytes(n1, n2)]
  assert.ok(there >= CARRIED && back >= CARRIED, `the burst went straight between the routers: ${there}/${back} bytes`)
  const viaRelay = [bytes(n2, relay), bytes(relay, n1), bytes(n1, relay), bytes(relay, n2)]
  assert.ok(viaRelay.every(b => b < CARRIED / 2), `no relay carried the burst (through pub1: ${viaRelay.join('/')} bytes)`)
  console.log(`# direct through the mapping: ${there}/${back} bytes between the routers, ${viaRelay.join('/')} through pub1`)

  await mesh.node('nat1').proc!.kill('SIGTERM')
  await mesh.waitFor('the mapping is removed on exit', async () => (await lab.upnpStatus('nat1')).mappings.length === 0, 60_000, 300)
})
