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
    const i = await mesh.info('nat1')
    mapped = (i as unknown as { endpoints: string[] }).endpoints.find(e => e.startsWith(`${gw.wanIp}:`)) ?? ''
    return mapped !== '' && (await lab.upnpStatus('nat1')).mappings.length > 0
  }, 20_000, 300)
  const t0 = Date.now()
  await mesh.waitFor('nat1↔nat2 direct (both symmetric: only the mapping makes it possible)', async () => {
    const a = (await mesh.info('nat1')).peers.find(p => p.name === 'nat2')
    const b = (await mesh.info('nat2')).peers.find(p => p.name === 'nat1')
    return a?.path === 'direct' && b?.path === 'direct'
  }, 30_000, 300)
  console.log(`# mapped ${mapped}; symmetric pair direct ${Date.now() - t0} ms after the mapping was advertised`)
  const b = (await mesh.info('nat2')).peers.find(p => p.name === 'nat1')!
  assert.equal(b.endpoint, mapped, 'nat2 reaches nat1 at the mapped endpoint')
  await lab.zeroFlows()
  const ping = await lab.ping('nat2', (await mesh.info('nat1')).ipv4, { count: 5, timeoutMs: 5000 })
  assert.ok(ping.ok)
  const flows = await lab.flows()
  const direct = flows.filter(f => f.src === lab.host('nat2').publicIp && f.dst === gw.wanIp).reduce((n, f) => n + f.packets, 0)
  assert.ok(direct >= 5, `pings went straight to nat1's router (${direct} packets)`)

  await mesh.node('nat1').proc!.kill('SIGTERM')
  await mesh.waitFor('the mapping is removed on exit', async () => (await lab.upnpStatus('nat1')).mappings.length === 0, 10_000, 300)
})
