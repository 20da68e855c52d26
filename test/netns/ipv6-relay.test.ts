/**
 * An IPv6-only host and an IPv4-only host reach each other through a dual-stack relay (issue
 * 11), on real WireGuard (wireguard-go) in network namespaces. A dual-stack lab: pub1 keeps
 * both families (the seed, and a relay with the default `--relay auto`); pub2 loses its IPv4
 * address and routes on eth0 before its agent starts (IPv6 only), pub3 its global IPv6 address
 * and IPv6 routes (IPv4 only; link-local stays, as on any such host). All three are public, so
 * nothing but the families keeps pub2 and pub3 apart. Shown:
 *   - pub2 and pub3 ping each other over the overlay's IPv4 and IPv6;
 *   - `wgmesh info --json` on each shows the other relayed through pub1, and WireGuard's
 *     endpoint for the other is the relay's port at pub1's IPv6 address on pub2 and at pub1's
 *     IPv4 address on pub3 (`relay:pub1/v6` in pub2's text);
 *   - pub2 sent no IPv4 and no ARP on eth0 the whole time (nft counters on its egress).
 * That the relay forwards ciphertext only is relay-privacy.test.ts. Needs root; FAILS (never skips).
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { Lab } from '../lab/lab.js'
import { BUNDLE, WgmeshLab, waitAllAlive, waitAllPairsPing } from './wgmesh-lab.js'

const HOSTS = ['pub1', 'pub2', 'pub3']
const LIMIT_MS = 60_000


/** nft counters of what `host` sends on eth0, per family (ARP in its own table). */
async function countEgress (lab: Lab, host: string): Promise<void> {
  await lab.run(host, ['nft', '-f', '-'], {
    input: `table inet wgmegress {
  counter v4out { }
  counter v6out { }
  chain out {
    type filter hook postrouting priority 0; policy accept;
    oifname "eth0" meta nfproto ipv4 counter name "v4out"
    oifname "eth0" meta nfproto ipv6 counter name "v6out"
  }
}
table arp wgmegressarp {
  counter arpout { }
  chain out { type filter hook output priority 0; policy accept; counter name "arpout"; }
}\n`
  })
}

async function egress (lab: Lab, host: string): Promise<{ ip4: number, ip6: number, arp: number }> {
  const read = async (family: string, table: string, name: string): Promise<number> => {
    const out = await lab.run(host, ['nft', 'list', 'counter', family, table, name])
    const m = /packets (\d+)/.exec(out)
    if (m === null) throw new Error(`no counter in: ${out}`)
    return Number(m[1])
  }
  return { ip4: await read('inet', 'wgmegress', 'v4out'), ip6: await read('inet', 'wgmegress', 'v6out'), arp: await read('arp', 'wgmegressarp', 'arpout') }
}

describe('IPv6-only ↔ IPv4-only through a dual-stack relay', () => {
  let lab: Lab
  let mesh: WgmeshLab
  let relay4 = ''
  let relay6 = ''

  before(async () => {
    Lab.requireRoot()
    lab = await Lab.up({ public: 3, natted: 0, underlay: 'dual' })
    mesh = new WgmeshLab(lab)
    relay4 = lab.host('pub1').ip
    relay6 = lab.host('pub1').ip6 ?? ''
    // pub2: IPv6 only (the IPv4 address goes, and the routes with it)
    await lab.run('pub2', ['ip', '-4', 'addr', 'flush', 'dev', 'eth0'])
    await lab.run('pub2', ['ip', '-4', 'route', 'flush', 'dev', 'eth0'])
    // pub3: IPv4 only (its global IPv6 address and the IPv6 routes go; link-local stays)
    await lab.run('pub3', ['ip', '-6', 'addr', 'flush', 'dev', 'eth0', 'scope', 'global'])
    await lab.run('pub3', ['ip', '-6', 'route', 'flush', 'dev', 'eth0'])
    await countEgress(lab, 'pub2')
  })

  after(async () => {
    await lab?.down()
    mesh?.cleanup()
  })

  test('the lab: pub1 dual-stack, pub2 IPv6 only, pub3 IPv4 only; pub2 and pub3 cannot reach each other on the underlay', async () => {
    assert.match(relay4, /^198\.18\.1\.1$/)
    assert.equal(relay6, '2001:db8:1::1')
    assert.equal((await lab.run('pub2', ['ip', '-4', '-o', 'addr', 'show', 'dev', 'eth0'])).trim(), '', 'pub2: no IPv4 address')
    assert.equal((await lab.run('pub2', ['ip', '-4', 'route', 'show', 'dev', 'eth0'])).trim(), '', 'pub2: no IPv4 route on eth0')
    assert.equal((await lab.run('pub2', ['ip', '-4', 'route', 'show', 'default'])).trim(), '', 'pub2: no IPv4 default route')
    assert.equal((await lab.run('pub3', ['ip', '-6', '-o', 'addr', 'show', 'dev', 'eth0', 'scope', 'global'])).trim(), '', 'pub3: no global IPv6 address')
    assert.equal((await lab.run('pub3', ['ip', '-6', 'route', 'show', 'default'])).trim(), '', 'pub3: no IPv6 default route')
    assert.equal((await lab.ping('pub2', relay6)).ok, true, 'pub2 → pub1 over IPv6')
    assert.equal((await lab.ping('pub3', relay4)).ok, true, 'pub3 → pub1 over IPv4')
    assert.equal((await lab.ping('pub2', lab.host('pub3').ip)).ok, false, 'pub2 → pub3 over IPv4: no')
    assert.equal((await lab.ping('pub3', lab.host('pub2').ip6!)).ok, false, 'pub3 → pub2 over IPv6: no')
    const e = await egress(lab, 'pub2')
    assert.equal(e.ip4 + e.arp, 0, `pub2 sent no IPv4 or ARP in these checks: ${JSON.stringify(e)}`)
  })

  test('pub2 and pub3 ping each other over the overlay, relayed by pub1, each over its own family', async () => {
    const t0 = Date.now()
    await mesh.start('pub1', 'up')
    const key = `${mesh.node('pub1').stateDir}/mesh.key`
    const tJoin = Date.now()
    mesh.launch('pub2', 'join', ['--peer', `[${relay6}]`, '--mesh-key-file', key])
    mesh.launch('pub3', 'join', ['--peer', relay4, '--mesh-key-file', key])
    const infos = await waitAllAlive(mesh, HOSTS, LIMIT_MS)
    const alive = Date.now() - tJoin
    await waitAllPairsPing(mesh, ['pub2', 'pub3'], infos, LIMIT_MS, ['ipv4', 'ipv6'])
    const pinging = Date.now() - tJoin
    await waitAllPairsPing(mesh, HOSTS, infos, 10_000, ['ipv4', 'ipv6'])
    // 'relay' is shown once a path step has seen the relayed session carry (the pings may be first)
    let i2 = await mesh.info('pub2')
    let i3 = await mesh.info('pub3')
    await mesh.waitFor('both ends show the pair relayed', async () => {
      i2 = await mesh.info('pub2')
      i3 = await mesh.info('pub3')
      return i2.peers.find(p => p.name === 'pub3')?.path === 'relay' && i3.peers.find(p => p.name === 'pub2')?.path === 'relay'
    }, 10_000, 250).catch((err: Error) => { console.log(`# ${err.message}`) }) // the assertions below say what is shown instead
    const relayed = Date.now() - tJoin
    const i1 = await mesh.info('pub1')
    assert.equal(i1.relay, true, 'pub1 (public on both families, --relay auto) relays')
    assert.deepEqual(i2.endpoints, [`[${lab.host('pub2').ip6!}]:51820`], 'pub2 advertises its IPv6 address only')
    assert.deepEqual(i3.endpoints, [`${lab.host('pub3').ip}:51820`], 'pub3 advertises its IPv4 address only')

    const p23 = i2.peers.find(p => p.name === 'pub3')
    const p32 = i3.peers.find(p => p.name === 'pub2')
    const why = `pub2→pub3 ${JSON.stringify(p23)}; pub3→pub2 ${JSON.stringify(p32)}\npub2 wg:\n${await mesh.wgDump('pub2')}\npub3 wg:\n${await mesh.wgDump('pub3')}`
    assert.equal(p23?.path, 'relay', why)
    assert.equal(p23.via, 'pub1', why)
    assert.equal(p23.family, 6, why)
    assert.match(p23.endpoint ?? '', new RegExp(`^\\[${relay6}\\]:\\d+$`), `pub2 points at the relay's IPv6 address: ${why}`)
    assert.equal(p32?.path, 'relay', why)
    assert.equal(p32.via, 'pub1', why)
    assert.equal(p32.family, 4, why)
    assert.match(p32.endpoint ?? '', new RegExp(`^${relay4.replaceAll('.', '\\.')}:\\d+$`), `pub3 points at the relay's IPv4 address: ${why}`)
    assert.notEqual(p23.endpoint!.replace(/^.*:/, ''), '51820', 'a relay port, not pub1\'s WireGuard port')
    // WireGuard itself: the peer entries point there
    const wgEndpoint = async (host: string, peerKey: string): Promise<string | undefined> =>
      (await mesh.wgDump(host)).split('\n').map(l => l.split('\t')).find(f => f[0] === peerKey)?.[2]
    assert.equal(await wgEndpoint('pub2', i3.wgPublicKey), p23.endpoint, 'pub2\'s WireGuard endpoint for pub3')
    assert.equal(await wgEndpoint('pub3', i2.wgPublicKey), p32.endpoint, 'pub3\'s WireGuard endpoint for pub2')
    // both ends' tunnels to the relay itself are direct, over their own families
    assert.equal(i2.peers.find(p => p.name === 'pub1')?.endpoint, `[${relay6}]:51820`)
    assert.equal(i3.peers.find(p => p.name === 'pub1')?.endpoint, `${relay4}:51820`)
    const text = await lab.run('pub2', [process.execPath, BUNDLE, 'info', '--state-dir', mesh.node('pub2').stateDir])
    assert.match(text, /relay:pub1\/v6/, `pub2's text names the relay and the family of its leg:\n${text}`)

    const relayLog = mesh.node('pub1').proc!.log()
    assert.ok(relayLog.includes('relaying a pair (ciphertext only)'), 'pub1 logged the pair it relays')
    const e = await egress(lab, 'pub2')
    console.log(`# v6-only ↔ v4-only via a dual-stack relay: all alive ${alive} ms, pub2↔pub3 overlay pings (v4+v6) ${pinging} ms, both shown relayed ${relayed} ms after the joins (${Date.now() - t0} ms from the first start); pub2 → pub3 ${p23.endpoint}, pub3 → pub2 ${p32.endpoint}; pub2 egress ${JSON.stringify(e)}`)
    assert.equal(e.ip4, 0, `pub2 sent no IPv4 on the underlay: ${JSON.stringify(e)}`)
    assert.equal(e.arp, 0, `pub2 sent no ARP: ${JSON.stringify(e)}`)
    assert.ok(e.ip6 > 100, `pub2's traffic went out over IPv6 (the counter counts): ${JSON.stringify(e)}`)
  })
})
