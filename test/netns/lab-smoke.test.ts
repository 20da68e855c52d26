// Smoke test of the netns lab itself (test/lab): underlay, NAT behaviour, a real wireguard-go
// tunnel through a NAT (IPv4 + IPv6 overlay) and a clean teardown; the service LAN (a host
// 'svc' reachable only through the gateways' svc0, with per-gateway counters). Needs root;
// FAILS (never skips) when the lab cannot run.
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, readFileSync } from 'node:fs'
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { Lab, type LabProcess } from '../lab/lab.js'

const UDP_PEER = fileURLToPath(new URL('../lab/udp-peer.mjs', import.meta.url))

async function waitFor (what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 3000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 25))
  }
}

function labNamespaces (prefix: string): string[] {
  return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n')
    .map(l => l.split(' ')[0] ?? '').filter(n => n.startsWith(prefix))
}

function alive (pid: number): boolean {
  // a zombie (exited, not yet reaped) no longer holds a namespace or a socket
  try { return !/^\S+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8')) } catch { return false }
}

describe('netns lab smoke', () => {
  let lab: Lab
  const procs: LabProcess[] = []
  const wgIfs: string[] = []

  before(async () => {
    Lab.requireRoot()
    lab = await Lab.up({ public: 2, natted: 1, nat: 'cone' })
  })
  after(async () => { await lab?.down() })

  it('has the documented address plan and the overlay guard', async () => {
    assert.deepEqual(lab.hosts.map(h => [h.name, h.role, h.ip, h.publicIp]), [
      ['pub1', 'pub', '198.18.1.1', '198.18.1.1'],
      ['pub2', 'pub', '198.18.1.2', '198.18.1.2'],
      ['nat1', 'nat', '192.0.2.2', '198.18.2.1']
    ])
    assert.equal(lab.host('nat1').router, 'r-nat1')
    assert.ok(lab.host('pub1').ns.startsWith(lab.prefix))
    const routes = await lab.run('pub1', ['ip', 'route', 'show', 'type', 'unreachable'])
    assert.match(routes, /100\.64\.0\.0\/10 metric 4000/)
    const r = await lab.exec('pub1', ['ping', '-n', '-c1', '-W1', '100.64.0.9'])
    assert.notEqual(r.code, 0, 'overlay address must be unreachable before a tunnel exists')
    // IPv6: on for the host (overlay), off on the underlay interface
    const v6 = await lab.run('pub1', ['sysctl', '-n', 'net.ipv6.conf.all.disable_ipv6',
      'net.ipv6.conf.default.disable_ipv6', 'net.ipv6.conf.eth0.disable_ipv6'])
    assert.deepEqual(v6.trim().split('\n'), ['0', '0', '1'])
    assert.doesNotMatch(await lab.run('pub1', ['ip', '-6', 'addr', 'show', 'dev', 'eth0']), /inet6/)
  })

  it('(a) pub1 pings pub2 on the underlay, counted on the internet bridge', async () => {
    await lab.zeroFlows()
    const p = await lab.ping('pub1', lab.host('pub2').ip, { count: 3, intervalMs: 50 })
    assert.ok(p.ok, p.output)
    assert.equal(p.received, 3)
    const f = (await lab.flows()).find(x => x.srcHost === 'pub1' && x.dstHost === 'pub2')
    assert.ok(f !== undefined && f.packets >= 3, `flows: ${JSON.stringify(f)}`)
    // the lab has no way out
    assert.equal((await lab.ping('pub1', '192.0.2.200', { timeoutMs: 1000 })).ok, false)
  })

  it('(b) NAT: outbound works, unsolicited inbound is dropped', async () => {
    const nat1 = lab.host('nat1')
    const pub1 = lab.host('pub1')
    assert.ok((await lab.ping('nat1', pub1.ip)).ok, 'nat1 -> pub1')
    assert.equal((await lab.ping('pub1', nat1.ip, { timeoutMs: 1000 })).ok, false, 'pub1 must not reach the LAN address')

    const echo = lab.spawn('udp-echo', 'pub1', [process.execPath, UDP_PEER, '40001', '--echo'])
    const peer = lab.spawn('udp-peer', 'nat1', [process.execPath, UDP_PEER, '40000', '--target', `${pub1.ip}:40001`])
    procs.push(echo, peer)
    await waitFor('udp peers', () => echo.log().includes('ready') && peer.log().includes('ready'))

    const dropped = async (): Promise<number> => {
      const out = await lab.run('r-nat1', ['nft', 'list', 'chain', 'inet', 'labfw', 'input'])
      return Number(/counter packets (\d+) bytes \d+ comment "unsolicited to router"/.exec(out)?.[1] ?? NaN)
    }
    const before = await dropped()
    for (const dst of [`${nat1.publicIp}:40000`, `${nat1.ip}:40000`]) {
      await lab.run('pub1', [process.execPath, UDP_PEER, '--send', dst, 'unsolicited', '40002'])
    }
    await new Promise(resolve => setTimeout(resolve, 300))
    assert.doesNotMatch(peer.log(), /recv/, 'unsolicited datagrams must not reach nat1')
    assert.ok((await dropped()) > before, 'r-nat1 counted the unsolicited datagram as dropped')

    // positive control: after nat1 sends first, pub1's answer comes back through the mapping
    await peer.kill('SIGUSR1')
    await waitFor('echo through the NAT', () => peer.log().includes(`recv ${pub1.ip}:40001 echo:punch`))
    // pub1 saw the router's WAN address; cone NAT kept the port
    assert.match(echo.log(), new RegExp(`recv ${nat1.publicIp.replace(/\./g, '\\.')}:40000 punch`))
    await echo.kill()
    await peer.kill()
    assert.equal(echo.exited && peer.exited, true)
  })

  it('(c) real wireguard-go tunnel pub1 <-> nat1 (IPv4 + IPv6 overlay, both directions)', async () => {
    const pub1 = lab.host('pub1')
    const a = await lab.wireguard('pub1', { listenPort: 51820, addresses: ['100.64.0.1/10', 'fd00:1::1/48'] })
    const b = await lab.wireguard('nat1', { listenPort: 51821, addresses: ['100.64.0.2/10', 'fd00:1::2/48'] })
    procs.push(a.proc, b.proc)
    wgIfs.push(a.ifname, b.ifname)
    assert.ok(existsSync(`/var/run/wireguard/${a.ifname}.sock`))
    // pub1 does not know nat1's endpoint: it learns it from nat1's handshake (roaming)
    await a.setPeer({ publicKey: b.publicKey, allowedIps: ['100.64.0.2/32', 'fd00:1::2/128'] })
    await b.setPeer({
      publicKey: a.publicKey,
      allowedIps: ['100.64.0.1/32', 'fd00:1::1/128'],
      endpoint: `${pub1.ip}:51820`,
      persistentKeepalive: 1
    })
    await lab.zeroFlows()
    for (const [from, to] of [['nat1', '100.64.0.1'], ['pub1', '100.64.0.2'], ['pub1', 'fd00:1::2'], ['nat1', 'fd00:1::1']] as const) {
      const p = await lab.ping(from, to, { count: 2, intervalMs: 100, timeoutMs: 3000 })
      assert.ok(p.ok, `${from} -> ${to}: ${p.output}`)
    }
    // pub1 learned nat1's endpoint: the router's WAN address
    const dump = await a.dump()
    const peerLine = dump.split('\n').find(l => l.startsWith(b.publicKey))
    assert.match(peerLine ?? '', new RegExp(`\\t${lab.host('nat1').publicIp.replace(/\./g, '\\.')}:\\d+\\t`))
    // and the tunnel really went over the underlay pub1 <-> r-nat1
    const flows = await lab.flows()
    const toNat = flows.find(f => f.srcHost === 'pub1' && f.dstHost === 'r-nat1')
    assert.ok(toNat !== undefined && toNat.packets >= 4, JSON.stringify(flows))
    // the overlay is bound to the interface: nothing goes out on eth0 for 100.64/10
    assert.match(await lab.run('pub1', ['ip', 'route', 'get', '100.64.0.2']), new RegExp(`dev ${a.ifname}`))
  })

  it('(d) down() leaves no namespace, process or socket behind', async () => {
    const prefix = lab.prefix
    const stateDir = lab.stateDir
    const pids = procs.map(p => p.pid)
    assert.ok(labNamespaces(prefix).length >= 4)
    await lab.down()
    assert.deepEqual(labNamespaces(prefix), [])
    for (const pid of pids) assert.equal(alive(pid), false, `pid ${pid} still alive`)
    for (const p of procs) assert.equal(p.exited, true, `${p.label} did not exit`)
    for (const i of wgIfs) assert.equal(existsSync(`/var/run/wireguard/${i}.sock`), false, `${i}.sock left`)
    assert.equal(existsSync(stateDir), false, 'state dir left')
    await lab.down() // idempotent
  })
})

describe('netns lab: service LAN behind pub1 and pub2', () => {
  let lab: Lab
  const SVC = '203.0.113.238'

  before(async () => {
    Lab.requireRoot()
    lab = await Lab.up({ public: 3, natted: 0, serviceLan: { hosts: ['pub1', 'pub2'] } })
  })
  after(async () => { await lab?.down() })

  it('has the documented addresses; svc is a host of its own, not one of lab.hosts', async () => {
    const sl = lab.serviceLan
    assert.ok(sl !== undefined)
    assert.equal(sl.subnet, '203.0.113.224/28')
    assert.equal(sl.svcIp, SVC)
    assert.deepEqual(sl.gateways, [{ host: 'pub1', ip: '203.0.113.225' }, { host: 'pub2', ip: '203.0.113.226' }])
    assert.equal(lab.host('pub1').svcIp, '203.0.113.225')
    assert.equal(lab.host('pub2').svcIp, '203.0.113.226')
    assert.equal(lab.host('pub3').svcIp, undefined)
    const svc = lab.host('svc')
    assert.deepEqual([svc.role, svc.ip, svc.ns], ['svc', SVC, `${lab.prefix}svc`])
    assert.deepEqual(lab.hosts.map(h => h.name), ['pub1', 'pub2', 'pub3'])
    assert.match(await lab.run('pub1', ['ip', '-4', '-o', 'addr', 'show', 'dev', 'svc0']), /inet 203\.0\.113\.225\/28 /)
    assert.doesNotMatch(await lab.run('pub1', ['ip', '-6', 'addr', 'show', 'dev', 'svc0']), /inet6/)
    const br = await lab.run('svc-br', ['ip', '-d', '-o', 'link', 'show', 'svc'])
    assert.match(br, / bridge /)
    assert.equal((await lab.run('svc-br', ['ip', '-o', 'addr', 'show', 'dev', 'svc'])).trim(), '', 'the svc bridge has no address')
    // forwarding stays off: the agent under test turns it on
    for (const h of ['pub1', 'pub2', 'svc']) {
      assert.equal((await lab.run(h, ['sysctl', '-n', 'net.ipv4.ip_forward'])).trim(), '0', `${h} forwards`)
    }
  })

  it('pub1 and pub2 reach svc over svc0; pub3 (no svc0) cannot', async () => {
    for (const h of ['pub1', 'pub2']) {
      assert.match(await lab.run(h, ['ip', 'route', 'get', SVC]), /dev svc0 /)
      const p = await lab.ping(h, SVC, { count: 2, intervalMs: 50 })
      assert.ok(p.ok && p.received === 2, `${h} -> svc: ${p.output}`)
    }
    const p3 = await lab.ping('pub3', SVC, { timeoutMs: 1000 })
    assert.equal(p3.ok, false, `pub3 must not reach svc: ${p3.output}`)
    assert.equal(p3.received, 0)
  })

  it('svc knows only its /28: no default route, nothing else reachable', async () => {
    assert.equal((await lab.run('svc', ['ip', 'route', 'show', 'default'])).trim(), '')
    const routes = (await lab.run('svc', ['ip', '-4', 'route'])).trim().split('\n')
    assert.deepEqual(routes.map(l => l.split(' ')[0]), ['203.0.113.224/28'], routes.join('\n'))
    assert.doesNotMatch(routes.join('\n'), /default/)
    assert.ok((await lab.ping('svc', '203.0.113.225')).ok, 'svc answers a gateway on its /28')
    for (const dst of [lab.host('pub1').ip, '198.18.0.1', '100.64.0.1']) {
      const r = await lab.exec('svc', ['ping', '-n', '-c1', '-W1', dst])
      assert.notEqual(r.code, 0, `svc -> ${dst}`)
      assert.match(r.stderr + r.stdout, /Network is unreachable/, `svc -> ${dst}`)
    }
  })

  it('svcCounters: pub1\'s svc0 counts pub1\'s pings, pub2\'s does not', async () => {
    // interface counters see every frame on the service LAN's bridge: a broadcast or multicast
    // frame (svc re-resolving a stale neighbour, IPv6 neighbour discovery) reaches pub2's svc0
    // too — a CI run counted one of 54 bytes. pub1's 5 echo replies must not: at most 2 frames.
    const before = await lab.svcCounters()
    assert.deepEqual(Object.keys(before).sort(), ['pub1', 'pub2'])
    assert.equal(before.pub1?.ip, '203.0.113.225')
    const p = await lab.ping('pub1', SVC, { count: 5, intervalMs: 20 })
    assert.ok(p.ok && p.received === 5, p.output)
    const after = await lab.svcCounters()
    const d = (h: 'pub1' | 'pub2', k: 'rxPackets' | 'txPackets'): number => (after[h]?.[k] ?? NaN) - (before[h]?.[k] ?? NaN)
    assert.ok(d('pub1', 'txPackets') >= 5 && d('pub1', 'rxPackets') >= 5, JSON.stringify({ before, after }))
    assert.equal(d('pub2', 'txPackets'), 0, JSON.stringify({ before, after }))
    assert.ok(d('pub2', 'rxPackets') <= 2, JSON.stringify({ before, after }))
  })

  it('up refuses a service LAN that collides with a NAT LAN, or an unknown gateway (nothing created)', async () => {
    await assert.rejects(Lab.up({ public: 0, natted: 47, serviceLan: { hosts: ['nat1'] } }),
      /service LAN 203\.0\.113\.224\/28 is the LAN of r-nat47 .*N_NATTED must stay below 47/)
    await assert.rejects(Lab.up({ public: 1, natted: 0, serviceLan: { hosts: ['pub2'] } }), /'pub2' is not a host of this lab/)
  })

  it('down() removes the service LAN with every other namespace', async () => {
    const prefix = lab.prefix
    const stateDir = lab.stateDir
    const names = labNamespaces(prefix)
    for (const n of ['svc', 'svc-br', 'pub1', 'internet']) assert.ok(names.includes(`${prefix}${n}`), `${n}: ${names.join(' ')}`)
    await lab.down()
    assert.deepEqual(labNamespaces(prefix), [])
    assert.equal(existsSync(stateDir), false, 'state dir left')
    await assert.rejects(lab.svcCounters(), /lab is down/)
  })
})
