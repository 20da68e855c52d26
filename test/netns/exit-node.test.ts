/**
 * Exit node on real WireGuard (issue 9): pub1 advertises 0.0.0.0/0 in group "exit" and also
 * sits on a service LAN (203.0.113.224/28) that no other host can reach; pub2 runs with
 * `--exit-node exit`, pub3 is a plain member.
 *   - pub2's traffic to an address outside the mesh (svc) leaves through pub1 (svc counts the
 *     requests from pub1's address); before pub2 opted in, svc was unreachable from it
 *   - WireGuard endpoints and the underlay stay on pub2's own routes: pub2 still pings pub3 over
 *     the overlay and pub3's underlay address directly (not through the tunnel)
 *   - `wgmesh leave` gives pub2 its old rules and routes back, and pub1's forwarding sysctls and
 *     nft table are gone after pub1 leaves
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { Lab } from '../lab/lab.js'
import { BUNDLE, WgmeshLab, waitAllAlive } from './wgmesh-lab.js'

const LIMIT_MS = 60_000
let lab: Lab
let mesh: WgmeshLab
let svcIp = ''
let key = ''

/** pub2's routing as text: every rule and every route of every table (the state leave must restore) */
async function routing (host: string): Promise<string> {
  const parts = []
  for (const fam of ['-4', '-6']) {
    parts.push(await lab.run(host, ['ip', fam, 'rule', 'show']))
    parts.push(await lab.run(host, ['ip', fam, 'route', 'show', 'table', 'all']))
  }
  // the mesh interface's own lines go with the interface (leave removes it)
  return parts.join('').split('\n').filter(l => !l.includes(mesh.node(host).iface) && !l.includes('ff00::/8') && !l.includes('fe80::/64')).sort().join('\n')
}

/** ICMP echo requests svc got from pub1's service-LAN address (its nft counter) */
async function requestsFromPub1 (): Promise<number> {
  const t = await lab.run('svc', ['nft', 'list', 'counter', 'inet', 'exitcount', 'req'])
  const n = Number(/packets (\d+)/.exec(t)?.[1])
  assert.ok(Number.isInteger(n), `counter readable: ${t}`)
  return n
}

const FWD = ['net.ipv4.conf.all.forwarding', 'net.ipv4.conf.eth0.forwarding', 'net.ipv4.conf.svc0.forwarding']
async function forwarding (host: string): Promise<string> {
  const out = []
  for (const k of FWD) out.push(`${k}=${(await lab.run(host, ['sysctl', '-n', k])).trim()}`)
  return out.join(' ')
}

before(async () => {
  Lab.requireRoot()
  lab = await Lab.up({ public: 3, natted: 0, serviceLan: { hosts: ['pub1'] } })
  mesh = new WgmeshLab(lab)
  svcIp = lab.serviceLan!.svcIp
  const gwIp = lab.serviceLan!.gateways[0]!.ip
  const r = await lab.exec('svc', ['nft', '-f', '-'], {
    input: `table inet exitcount {\n counter req {}\n chain in {\n  type filter hook input priority 0; policy accept;\n  ip saddr ${gwIp} icmp type echo-request counter name req\n }\n}\n`
  })
  assert.equal(r.code, 0, r.stderr)
})

after(async () => {
  await lab?.down()
  mesh?.cleanup()
})

test('without an exit node the service LAN is out of reach; with one, traffic leaves through it; endpoints stay direct; leave restores', async () => {
  const fwdBefore = await forwarding('pub1')
  const routingBefore = await routing('pub2')
  assert.equal((await lab.ping('pub2', svcIp, { count: 1, timeoutMs: 2000 })).ok, false, 'svc is unreachable from pub2 on its own routes')

  await mesh.start('pub1', 'up', ['--advertise-route', '0.0.0.0/0', '--route-group', 'exit'])
  key = `${mesh.node('pub1').stateDir}/mesh.key`
  await mesh.start('pub2', 'join', ['--peer', lab.host('pub1').ip, '--mesh-key-file', key, '--exit-node', 'exit'])
  await mesh.start('pub3', 'join', ['--peer', lab.host('pub1').ip, '--mesh-key-file', key])
  const infos = await waitAllAlive(mesh, ['pub1', 'pub2', 'pub3'], LIMIT_MS)
  await mesh.waitFor('pub2 sees the exit group active', async () => {
    const i = await mesh.tryInfo('pub2') as { groups?: Array<{ group: string, active?: { name: string } }> } | undefined
    return i?.groups?.find(g => g.group === 'exit')?.active?.name === 'pub1'
  }, LIMIT_MS, 250)
  assert.notEqual(await forwarding('pub1'), fwdBefore, 'pub1 forwards now')

  const n0 = await requestsFromPub1()
  await mesh.waitFor('pub2 pings svc through the exit', async () => (await lab.ping('pub2', svcIp, { count: 1, timeoutMs: 2000 })).ok, 20_000, 250)
  assert.ok((await lab.ping('pub2', svcIp, { count: 10, intervalMs: 50, timeoutMs: 5000 })).ok)
  assert.ok(await requestsFromPub1() - n0 >= 10, 'svc got the requests from pub1 (masqueraded)')
  const via = await lab.run('pub2', ['ip', 'route', 'get', svcIp])
  assert.match(via, new RegExp(`dev ${mesh.node('pub2').iface}`), `svc goes into the tunnel: ${via}`)
  // the underlay and the mesh stay as they were
  const toPub3 = await lab.run('pub2', ['ip', 'route', 'get', lab.host('pub3').ip])
  assert.match(toPub3, /dev eth0/, `pub3's underlay address stays on eth0: ${toPub3}`)
  assert.ok((await lab.ping('pub2', lab.host('pub3').ip, { count: 3, timeoutMs: 3000 })).ok, 'pub3 underlay ping')
  assert.ok((await lab.ping('pub2', infos.get('pub3')!.ipv4, { count: 3, timeoutMs: 3000 })).ok, 'pub3 overlay ping')
  const dump = await mesh.wgDump('pub2')
  assert.match(dump.split('\n')[0]!, /\t0x776d$/, 'WireGuard marks its own packets (fwmark 30573)')

  const leave = await lab.exec('pub2', [process.execPath, BUNDLE, 'leave', '--state-dir', mesh.node('pub2').stateDir], { timeoutMs: 20_000 })
  assert.equal(leave.code, 0, leave.stderr)
  await mesh.node('pub2').proc!.wait()
  assert.equal(await routing('pub2'), routingBefore, 'pub2 has its old rules and routes back')
  assert.equal((await lab.ping('pub2', svcIp, { count: 1, timeoutMs: 2000 })).ok, false, 'svc is out of reach again')

  const leave1 = await lab.exec('pub1', [process.execPath, BUNDLE, 'leave', '--state-dir', mesh.node('pub1').stateDir], { timeoutMs: 20_000 })
  assert.equal(leave1.code, 0, leave1.stderr)
  await mesh.node('pub1').proc!.wait()
  assert.equal(await forwarding('pub1'), fwdBefore, 'pub1 forwarding sysctls are back')
  const tables = await lab.run('pub1', ['nft', 'list', 'tables'])
  assert.doesNotMatch(tables, /wgmesh_/, 'pub1 nft table removed')
})
