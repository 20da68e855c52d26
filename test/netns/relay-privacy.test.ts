/**
 * A relay sees ciphertext only and routes nothing (issue 7, finding I3 and I6), on real
 * WireGuard through real NAT routers: two symmetric-NAT hosts must be relayed by one of the two
 * public hosts.
 *   - a relayed ping carrying a marker pattern: a capture on every interface of the relay shows
 *     the relay carried the burst but never the marker; the same capture on the receiver's
 *     mesh interface does show it (the method can see cleartext)
 *   - a member that routes a LAN behind the relay into its tunnel to the relay gets nothing
 *     through (and gets through when the relay forwards — the attack setup is live)
 *   - the relay's forwarding sysctls are as before, while relaying and after `wgmesh leave`
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { readFileSync, rmSync } from 'node:fs'
import { promisify } from 'node:util'
import { Lab } from '../lab/lab.js'
import { BUNDLE, WgmeshLab, type InfoJson } from './wgmesh-lab.js'

const run = promisify(execFile)
const HOSTS = ['pub1', 'pub2', 'nat1', 'nat2']
const MARKER = 'de5ec7ab1e0f7a11de5ec7ab1e0f7a11' // ping -p takes 16 bytes of pattern
const SYSCTLS = ['net.ipv4.ip_forward', 'net.ipv4.conf.all.forwarding', 'net.ipv4.conf.default.forwarding',
  'net.ipv6.conf.all.forwarding', 'net.ipv6.conf.default.forwarding', 'net.ipv4.conf.all.send_redirects', 'net.ipv4.conf.eth0.forwarding']
const LIMIT_MS = 60_000

let lab: Lab
let mesh: WgmeshLab
let relay = ''
let lanNs = ''
const infos = new Map<string, InfoJson>()
const before0 = new Map<string, string>()

async function sysctls (host: string): Promise<string> {
  const out: string[] = []
  for (const k of SYSCTLS) out.push(`${k}=${(await lab.run(host, ['sysctl', '-n', k])).trim()}`)
  return out.join(' ')
}

before(async () => {
  Lab.requireRoot()
  lab = await Lab.up({ public: 2, natted: 2, nat: 'symmetric' })
  mesh = new WgmeshLab(lab)
  for (const h of ['pub1', 'pub2']) before0.set(h, await sysctls(h))
  await mesh.start('pub1', 'up')
  const key = `${mesh.node('pub1').stateDir}/mesh.key`
  await Promise.all(HOSTS.slice(1).map(async h => await mesh.start(h, 'join', ['--peer', lab.host('pub1').ip, '--mesh-key-file', key])))
  await mesh.waitFor('nat1↔nat2 relayed, both ends through the same relay', async () => {
    for (const h of HOSTS) {
      const i = await mesh.tryInfo(h)
      if (i === undefined) return false
      infos.set(h, i)
    }
    const a = infos.get('nat1')!.peers.find(p => p.name === 'nat2')
    const b = infos.get('nat2')!.peers.find(p => p.name === 'nat1')
    if (a?.path !== 'relay' || b?.path !== 'relay' || a.via === undefined || a.via !== b.via) return false
    relay = a.via
    return true
  }, LIMIT_MS, 250)
})

after(async () => {
  if (lanNs !== '') await run('ip', ['netns', 'del', lanNs]).catch((err: Error) => { console.log(`# cleanup: ${err.message}`) })
  await lab?.down()
  mesh?.cleanup()
})

/** Bytes of a pcap file that hold the marker pattern (any alignment the pattern repeats in). */
function holdsMarker (file: string): boolean {
  return readFileSync(file).includes(Buffer.from(MARKER, 'hex'))
}

test('a relayed ping crosses the relay as ciphertext only', async () => {
  const files = { relay: `${mesh.root}/relay.pcap`, receiver: `${mesh.root}/receiver.pcap` }
  const relayCap = lab.spawn('tcpdump-relay', relay, ['tcpdump', '-i', 'any', '-n', '-U', '-s', '0', '-w', files.relay])
  const recvCap = lab.spawn('tcpdump-receiver', 'nat2', ['tcpdump', '-i', mesh.node('nat2').iface, '-n', '-U', '-s', '0', '-w', files.receiver])
  try {
    await new Promise(resolve => setTimeout(resolve, 1000)) // tcpdump attaches
    const before = await sysctls(relay)
    const r = await lab.exec('nat1', ['ping', '-n', '-q', '-c', '20', '-i', '0.05', '-s', '1000', '-p', MARKER, '-W', '3', infos.get('nat2')!.ipv4], { timeoutMs: 30_000 })
    assert.ok(Number(/(\d+) received/.exec(r.stdout)?.[1] ?? 0) >= 19, `relayed ping: ${r.stdout}`)
    assert.equal(await sysctls(relay), before, 'relaying changes no sysctl')
    await new Promise(resolve => setTimeout(resolve, 500))
  } finally {
    for (const cap of [relayCap, recvCap]) {
      await cap.kill('SIGINT') // tcpdump writes out what it holds and exits
      await cap.wait()
    }
  }
  const relayBytes = readFileSync(files.relay).length
  assert.ok(relayBytes > 2 * 20 * 1000, `the relay's capture holds the relayed burst (${relayBytes} bytes)`)
  assert.ok(holdsMarker(files.receiver), 'the receiver\'s mesh interface shows the marker (the capture sees cleartext)')
  assert.ok(!holdsMarker(files.relay), 'no interface of the relay ever carried the marker in cleartext')
  rmSync(files.relay, { force: true })
  rmSync(files.receiver, { force: true })
})

test('a member cannot route through the relay into the relay\'s LAN', async () => {
  // a LAN behind the relay: 203.0.113.0/24 with one host that answers pings
  lanNs = `${lab.ns(relay)}-lan`
  await run('ip', ['netns', 'add', lanNs])
  await run('ip', ['link', 'add', 'rlan0', 'netns', lab.ns(relay), 'type', 'veth', 'peer', 'name', 'eth0', 'netns', lanNs])
  await lab.run(relay, ['ip', 'addr', 'add', '203.0.113.1/24', 'dev', 'rlan0'])
  await lab.run(relay, ['ip', 'link', 'set', 'rlan0', 'up'])
  const inLan = async (argv: string[]): Promise<void> => { await run('ip', ['netns', 'exec', lanNs, ...argv]) }
  await inLan(['ip', 'addr', 'add', '203.0.113.2/24', 'dev', 'eth0'])
  await inLan(['ip', 'link', 'set', 'eth0', 'up'])
  await inLan(['ip', 'link', 'set', 'lo', 'up'])
  await inLan(['ip', 'route', 'add', 'default', 'via', '203.0.113.1'])
  assert.equal((await lab.ping(relay, '203.0.113.2', { count: 1, timeoutMs: 3000 })).received, 1, 'the relay reaches its LAN')

  // the attacker (nat1, a member) sends the LAN's traffic into its tunnel to the relay
  const rec = infos.get(relay)!
  const iface = mesh.node('nat1').iface
  const attack = async (): Promise<number> => {
    await lab.run('nat1', ['wg', 'set', iface, 'peer', rec.wgPublicKey, 'allowed-ips', `${rec.ipv4}/32,${rec.ipv6}/128,203.0.113.0/24`])
    await lab.exec('nat1', ['ip', 'route', 'replace', '203.0.113.0/24', 'dev', iface])
    return (await lab.ping('nat1', '203.0.113.2', { count: 3, timeoutMs: 6000, intervalMs: 200 })).received
  }
  const forwarding = (await lab.run(relay, ['sysctl', '-n', 'net.ipv4.conf.all.forwarding'])).trim()
  try {
    // what a relay that forwards (the old design) would allow: proves the attack path is live
    await lab.run(relay, ['sysctl', '-q', '-w', 'net.ipv4.conf.all.forwarding=1'])
    assert.ok(await attack() >= 1, 'with forwarding on, the attack reaches the LAN (the setup is right)')
  } finally {
    await lab.run(relay, ['sysctl', '-q', '-w', `net.ipv4.conf.all.forwarding=${forwarding}`])
  }
  assert.equal(await attack(), 0, 'the relay as wgmesh leaves it forwards nothing into its LAN')
})

test('the relay\'s sysctls are as before after wgmesh leave', async () => {
  const r = await lab.exec(relay, [process.execPath, BUNDLE, 'leave', '--state-dir', mesh.node(relay).stateDir], { timeoutMs: 20_000 })
  assert.equal(r.code, 0, r.stderr)
  await mesh.waitFor(`${relay}'s agent exits`, () => mesh.node(relay).proc!.exited, 15_000).catch((err: Error) => {
    throw new Error(`${err.message}; its log ends:\n${mesh.node(relay).proc!.log().split('\n').slice(-30).join('\n')}`)
  })
  assert.equal(await sysctls(relay), before0.get(relay))
})
