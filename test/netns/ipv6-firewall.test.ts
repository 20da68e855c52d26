/**
 * Two hosts behind stateful IPv6 firewalls (issue 11) on real WireGuard (wireguard-go) in
 * network namespaces: an IPv6-only lab (2001:db8:1::1-3), pub1 an open seed; pub2 and pub3
 * each drop every NEW inbound packet on eth0 (nft, accepting only `ct state
 * established,related`, lo, the mesh interface and ICMPv6 neighbour discovery). With the
 * default flags and `--peer [pub1]` only, pub2 and pub3 reach each other DIRECTLY (endpoint:
 * the other's IPv6 address, not pub1's; path 'direct', not 'lan': a global IPv6 address is no
 * NAT's) and ping over the overlay's IPv4 and IPv6; each classifies itself `firewalled` (its
 * address seen as its own, but no answer from pub1's other STUN port: a change-port probe),
 * which its record says as `cone` (what older agents know), so each keeps a persistent
 * keepalive on the direct path (the firewalls' state); a plain underlay ping from pub3 to pub2
 * is dropped, and pub2's drop counter is > 0. Needs root; FAILS (never skips).
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { Lab } from '../lab/lab.js'
import { WgmeshLab, logEvents, waitAllAlive, waitAllPairsPing, type LogEvent } from './wgmesh-lab.js'

const HOSTS = ['pub1', 'pub2', 'pub3']
const WALLED = ['pub2', 'pub3']
const LIMIT_MS = 60_000

/** The agent's 'NAT probed' lines (JSON log). */
function natProbed (mesh: WgmeshLab, host: string): LogEvent[] {
  return logEvents(mesh.node(host).proc?.log() ?? '').filter(l => l.message === 'NAT probed')
}

/** nft: a stateful firewall on `host` that lets in only replies (and lo, the mesh interface, ICMPv6 ND). */
async function wall (lab: Lab, host: string, meshIface: string): Promise<void> {
  await lab.run(host, ['nft', '-f', '-'], {
    input: `table inet wgmfw {
  counter dropped { }
  chain in {
    type filter hook input priority 0; policy accept;
    iif "lo" accept
    iifname "${meshIface}" accept
    ct state established,related accept
    icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-advert } accept
    iifname "eth0" counter name "dropped" drop
  }
}\n`
  })
}

/** The packets counted by `host`'s drop rule. */
async function dropped (lab: Lab, host: string): Promise<number> {
  const out = await lab.run(host, ['nft', 'list', 'counter', 'inet', 'wgmfw', 'dropped'])
  const m = /packets (\d+)/.exec(out)
  if (m === null) throw new Error(`no counter in: ${out}`)
  return Number(m[1])
}

describe('IPv6 underlay: two hosts behind stateful firewalls (replies only) connect directly', () => {
  let lab: Lab
  let mesh: WgmeshLab

  before(async () => {
    Lab.requireRoot()
    lab = await Lab.up({ public: 3, natted: 0, underlay: 'ipv6' })
    mesh = new WgmeshLab(lab)
    for (const h of WALLED) await wall(lab, h, mesh.node(h).iface)
  })

  after(async () => {
    await lab?.down()
    mesh?.cleanup()
  })

  test('the firewalls are live: a NEW inbound echo request to pub2 is dropped, pub2 still reaches pub1', async () => {
    const before = await dropped(lab, 'pub2')
    assert.equal((await lab.ping('pub3', lab.host('pub2').ip, { count: 2, timeoutMs: 2000 })).ok, false, 'pub3 → pub2 underlay ping is dropped')
    assert.ok(await dropped(lab, 'pub2') > before, 'pub2 counted the dropped echo requests')
    assert.equal((await lab.ping('pub2', lab.host('pub1').ip)).ok, true, 'pub2 → pub1 (the reply is let in)')
    assert.equal((await lab.ping('pub3', lab.host('pub1').ip)).ok, true, 'pub3 → pub1 (the reply is let in)')
  })

  test('pub2 and pub3 join through pub1; their path is direct (not relayed) over IPv6 and both overlay families ping', async () => {
    const seed = `[${lab.host('pub1').ip}]`
    await mesh.start('pub1', 'up')
    const key = `${mesh.node('pub1').stateDir}/mesh.key`
    const tJoin = Date.now()
    for (const h of WALLED) mesh.launch(h, 'join', ['--peer', seed, '--mesh-key-file', key])
    const infos = await waitAllAlive(mesh, HOSTS, LIMIT_MS)
    const alive = Date.now() - tJoin
    await waitAllPairsPing(mesh, HOSTS, infos, LIMIT_MS, ['ipv4', 'ipv6'])
    const pinging = Date.now() - tJoin

    // each walled host: its own address seen by pub1's STUN server, but no answer from pub1's
    // other port → firewalled (the record: cone); pub1 stays unknown (every other server is walled)
    let nats = ''
    await mesh.waitFor('pub2 and pub3 classified firewalled (cone in the record)', async () => {
      const n = await Promise.all(WALLED.map(async h => (await mesh.info(h)).nat))
      nats = n.join(' ')
      return n.every(x => x === 'cone')
    }, 20_000, 250).catch((err: Error) => { throw new Error(`${err.message}: ${nats}`) })
    const classified: string[] = []
    for (const h of WALLED) {
      const probed = natProbed(mesh, h).filter(l => l.family === 6)
      classified.push(`${h} ${Date.parse(String(probed[0]?.ts)) - tJoin} ms`)
      const last = probed.at(-1)
      assert.ok(last !== undefined, `${h}: no 'NAT probed' line`)
      assert.deepEqual({ nat: last.nat, filtering: last.filtering, publicAddress: last.publicAddress },
        { nat: 'firewalled', filtering: 'filtered', publicAddress: lab.host(h).ip }, `${h}: ${JSON.stringify(probed)}`)
      // every IPv6 verdict it ever logged was firewalled: it never took itself for open, nor lost its class
      assert.deepEqual([...new Set(probed.map(l => l.nat))], ['firewalled'], `${h}: every IPv6 probe verdict firewalled`)
    }
    const pub1Nat = (await mesh.info('pub1')).nat

    // the pair's path: direct (not relayed, and not 'lan': a global IPv6 address is nobody's NAT)
    const paths: string[] = []
    for (const [h, other] of [['pub2', 'pub3'], ['pub3', 'pub2']] as const) {
      const p = (await mesh.info(h)).peers.find(x => x.name === other)
      assert.ok(p !== undefined, `${h} knows ${other}`)
      paths.push(`${h}→${other} ${p.path}${p.via !== undefined ? `:${p.via}` : ''} ${p.endpoint ?? '-'} family ${p.family ?? '?'} nat ${p.nat ?? '-'}`)
      const dump = await mesh.wgDump(h)
      const why = `${paths.join('; ')}\n${h} wg:\n${dump}`
      assert.equal(p.path, 'direct', why)
      assert.equal(p.via, undefined, why)
      assert.equal(p.endpoint, `[${lab.host(other).ip}]:51820`, why)
      assert.equal(p.family, 6, why)
      assert.equal(p.nat, 'cone', why)
      // wg show dump, a peer line: key psk endpoint allowed-ips handshake rx tx keepalive
      const line = dump.split('\n').find(l => l.split('\t')[2] === `[${lab.host(other).ip}]:51820`)
      const keepalive = line?.split('\t')[7]
      assert.ok(keepalive !== undefined && keepalive !== 'off' && Number(keepalive) > 0, `${h} keeps its firewall's state for ${other} with a persistent keepalive: ${why}`)
    }
    console.log(`# two stateful IPv6 firewalls: all alive ${alive} ms, all 12 ordered overlay pings ${pinging} ms after the joins, firewalled (cone) after the joins: ${classified.join(', ')}; nat pub1 ${pub1Nat}; ${paths.join('; ')}`)

    await waitAllPairsPing(mesh, WALLED, infos, 10_000, ['ipv4', 'ipv6']) // and on that direct path

    // the firewalls stayed in force the whole time
    assert.equal((await lab.ping('pub3', lab.host('pub2').ip, { count: 2, timeoutMs: 2000 })).ok, false, 'pub3 → pub2 underlay ping still dropped')
    const n = await dropped(lab, 'pub2')
    console.log(`# pub2 dropped ${n} NEW inbound packets`)
    assert.ok(n > 0, `pub2's firewall dropped packets: ${n}`)
  })
})
