/**
 * The core mesh on real WireGuard (wireguard-go) in network namespaces: 5 public hosts, each
 * joining a different existing node; all-pairs ping over IPv4 and IPv6; kill -9 of one agent
 * (tunnels keep forwarding, the others mark it dead in time); restart with no --peer (same
 * keys and IPs); `wgmesh leave` seen everywhere at once.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { Lab } from '../lab/lab.js'
import { WgmeshLab, type InfoJson } from './wgmesh-lab.js'

const HOSTS = ['pub1', 'pub2', 'pub3', 'pub4', 'pub5']
const DEAD_AFTER_MS = 2000
let lab: Lab
let mesh: WgmeshLab
const infos = new Map<string, InfoJson>()

before(async () => {
  Lab.requireRoot()
  lab = await Lab.up({ public: 5, natted: 0 })
  mesh = new WgmeshLab(lab)
})

after(async () => {
  await lab?.down()
  mesh?.cleanup()
})

async function pingAll (family: 'ipv4' | 'ipv6', hosts: string[]): Promise<string[]> {
  const failures: string[] = []
  await Promise.all(hosts.map(async src => {
    for (const dst of hosts) {
      if (dst === src) continue
      const r = await lab.ping(src, infos.get(dst)![family], { count: 1, timeoutMs: 2000 })
      if (!r.ok) failures.push(`${src}→${dst} (${family})`)
    }
  }))
  return failures
}

test('5 nodes, each joining a different existing node, form a full mesh', async () => {
  const t0 = Date.now()
  await mesh.start('pub1', 'up')
  const keyFile = `${mesh.node('pub1').stateDir}/mesh.key`
  for (let i = 2; i <= 5; i++) {
    await mesh.start(`pub${i}`, 'join', ['--peer', lab.host(`pub${i - 1}`).ip, '--mesh-key-file', keyFile])
  }
  await mesh.waitFor('every node lists 4 alive peers', async () => {
    for (const h of HOSTS) {
      const i = await mesh.info(h)
      infos.set(h, i)
      if (i.peers.length !== 4 || i.peers.some(p => p.status !== 'alive')) return false
    }
    return true
  }, 20_000)
  const ips = HOSTS.map(h => infos.get(h)!.ipv4)
  assert.equal(new Set(ips).size, 5, 'distinct overlay IPv4s')
  for (const h of HOSTS) assert.match(infos.get(h)!.ipv4, /^100\.96\./)

  // every ordered pair pings over both families (retry briefly: first handshakes take a moment)
  let failures: string[] = []
  await mesh.waitFor('all-pairs ping', async () => {
    failures = [...await pingAll('ipv4', HOSTS), ...await pingAll('ipv6', HOSTS)]
    return failures.length === 0
  }, 15_000, 200).catch(() => {})
  assert.deepEqual(failures, [], 'every ordered pair pings over IPv4 and IPv6')
  console.log(`# 5-node mesh, all 40 ordered pings ok, ${Date.now() - t0} ms after the first start`)

  // the traffic really is WireGuard: handshakes are recorded for every peer
  const dump = await mesh.wgDump('pub1')
  const peerLines = dump.trim().split('\n').slice(1)
  assert.equal(peerLines.length, 4)
  for (const l of peerLines) assert.notEqual(l.split('\t')[4], '0', `handshake with ${l.split('\t')[0]}`)
})

test('kill -9 of an agent: its tunnels keep forwarding, the others mark it dead in time', async () => {
  const victim = 'pub3'
  const victimIp = infos.get(victim)!.ipv4
  const victimId = infos.get(victim)!.nodeId
  // continuous pings across the kill: survivor→victim and survivor→survivor
  const toVictim = lab.exec('pub1', ['ping', '-n', '-i', '0.2', '-c', '25', '-W', '1', victimIp], { timeoutMs: 15_000 })
  const between = lab.exec('pub2', ['ping', '-n', '-i', '0.2', '-c', '25', '-W', '1', infos.get('pub4')!.ipv4], { timeoutMs: 15_000 })
  await new Promise(resolve => setTimeout(resolve, 1000))
  const killedAt = Date.now()
  await mesh.node(victim).proc!.kill('SIGKILL')
  const survivors = HOSTS.filter(h => h !== victim)
  const detectMs = await mesh.waitFor('survivors mark the victim dead', async () => {
    for (const h of survivors) {
      const p = (await mesh.info(h)).peers.find(x => x.nodeId === victimId)
      if (p?.status !== 'dead') return false
    }
    return true
  }, DEAD_AFTER_MS + 3000, 50)
  const sinceKill = Date.now() - killedAt
  console.log(`# kill -9 detected by all survivors ${sinceKill} ms after the kill (dead-after ${DEAD_AFTER_MS} ms, poll ${detectMs} ms)`)
  assert.ok(sinceKill <= DEAD_AFTER_MS + 1500, `dead within the timeout (+ heartbeat and poll slack): ${sinceKill} ms`)
  for (const [name, p] of [['pub1→victim', toVictim], ['pub2→pub4', between]] as const) {
    const r = await p
    const m = /(\d+) packets transmitted, (\d+) received/.exec(r.stdout)
    assert.ok(m !== null, r.stdout)
    assert.equal(m[2], m[1], `${name}: no ping lost while the agent was dead (${m[0]})`)
  }
  // the dead peer is still configured: the agent is not in the data path
  assert.ok((await mesh.wgDump('pub1')).includes(infos.get(victim)!.wgPublicKey))
})

test('the killed node restarts with no --peer: same keys and IPs, alive again everywhere', async () => {
  const victim = 'pub3'
  const before = infos.get(victim)!
  await mesh.start(victim, 'join') // no --peer, no key: the state dir has both
  const after = await mesh.info(victim)
  assert.equal(after.nodeId, before.nodeId)
  assert.equal(after.wgPublicKey, before.wgPublicKey)
  assert.equal(after.ipv4, before.ipv4)
  assert.equal(after.ipv6, before.ipv6)
  const ms = await mesh.waitFor('alive again on every node and it sees all 4', async () => {
    if ((await mesh.info(victim)).peers.filter(p => p.status === 'alive').length !== 4) return false
    for (const h of HOSTS.filter(x => x !== victim)) {
      if ((await mesh.info(h)).peers.find(p => p.nodeId === before.nodeId)?.status !== 'alive') return false
    }
    return true
  }, 10_000)
  console.log(`# restarted node alive everywhere after ${ms} ms`)
  const failures = [...await pingAll('ipv4', HOSTS), ...await pingAll('ipv6', HOSTS)]
  assert.deepEqual(failures, [])
})

test('wgmesh leave removes the node from every other node at once', async () => {
  const leaver = 'pub5'
  const id = infos.get(leaver)!.nodeId
  const wgKey = infos.get(leaver)!.wgPublicKey
  const t0 = Date.now()
  const r = await lab.exec(leaver, [process.execPath, (await import('./wgmesh-lab.js')).BUNDLE, 'leave', '--state-dir', mesh.node(leaver).stateDir])
  assert.equal(r.code, 0, r.stderr)
  const others = HOSTS.filter(h => h !== leaver)
  const ms = await mesh.waitFor('gone from every other node (table and WireGuard)', async () => {
    for (const h of others) {
      if ((await mesh.info(h)).peers.some(p => p.nodeId === id)) return false
      if ((await mesh.wgDump(h)).includes(wgKey)) return false
    }
    return true
  }, 2000, 20)
  console.log(`# leave: gone from all 4 others ${Date.now() - t0} ms after 'wgmesh leave' (poll ${ms} ms)`)
  const exit = await mesh.node(leaver).proc!.wait()
  assert.equal(exit.code, 0, 'the agent exits cleanly after leaving')
  const ifaces = await lab.exec(leaver, ['ip', 'link', 'show', mesh.node(leaver).iface])
  assert.notEqual(ifaces.code, 0, 'the leaver removed its interface')
})
