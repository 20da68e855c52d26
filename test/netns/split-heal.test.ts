/**
 * Partition and heal on real agents and real WireGuard: 5 public hosts form one mesh, then a
 * firewall in every host's namespace drops all TCP (gossip) and UDP (WireGuard, STUN) between
 * the sides {pub1, pub2} | {pub3, pub4, pub5} until each side sees the other dead in
 * `wgmesh info --json`; then the rules go and the mesh must become one again: everyone alive in
 * everyone's info, and every ordered pair pings over the overlay (IPv4 and IPv6).
 * Behaviour only: every step waits on a condition with a generous limit.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { Lab } from '../lab/lab.js'
import { WgmeshLab, waitAllAlive, waitAllPairsPing, type InfoJson } from './wgmesh-lab.js'

const HOSTS = ['pub1', 'pub2', 'pub3', 'pub4', 'pub5']
const SIDE_A = ['pub1', 'pub2']
const SIDE_B = ['pub3', 'pub4', 'pub5']
const LIMIT_MS = 60_000
const TABLE = 'wgmsplit'
let lab: Lab
let mesh: WgmeshLab

before(async () => {
  Lab.requireRoot()
  lab = await Lab.up({ public: 5, natted: 0 })
  mesh = new WgmeshLab(lab)
})

after(async () => {
  await lab?.down()
  mesh?.cleanup()
})

/** In `host`'s namespace: drop TCP and UDP to and from the underlay addresses of `others`. */
async function cutOff (host: string, others: string[]): Promise<void> {
  const ips = others.map(h => lab.host(h).ip).join(', ')
  const r = await lab.exec(host, ['nft', '-f', '-'], {
    input: [`table inet ${TABLE} {`,
      '  chain in { type filter hook input priority -10; policy accept;',
      `    ip saddr { ${ips} } meta l4proto { tcp, udp } counter drop`, '  }',
      '  chain out { type filter hook output priority -10; policy accept;',
      `    ip daddr { ${ips} } meta l4proto { tcp, udp } counter drop`, '  }',
      '}', ''].join('\n')
  })
  assert.equal(r.code, 0, `nft in ${host}: ${r.stderr}`)
}

async function heal (host: string): Promise<void> {
  const r = await lab.exec(host, ['nft', 'delete', 'table', 'inet', TABLE])
  assert.equal(r.code, 0, `nft in ${host}: ${r.stderr}`)
}

/** `host`'s view of the named peers: name=status. */
function statuses (info: InfoJson, names: string[]): string[] {
  return names.map(n => `${n}=${info.peers.find(p => p.name === n)?.status ?? 'missing'}`)
}

test('split 2 | 3: each side marks the other dead; healed: one mesh again, every ordered pair pings', async () => {
  const t0 = Date.now()
  await mesh.start('pub1', 'up')
  const keyFile = `${mesh.node('pub1').stateDir}/mesh.key`
  for (const h of HOSTS.slice(1)) await mesh.start(h, 'join', ['--peer', lab.host('pub1').ip, '--mesh-key-file', keyFile])
  let infos = await waitAllAlive(mesh, HOSTS, LIMIT_MS)
  await waitAllPairsPing(mesh, HOSTS, infos, LIMIT_MS)
  console.log(`# one mesh of 5, all pairs ping, ${Date.now() - t0} ms after the first start`)

  // split
  const tSplit = Date.now()
  for (const h of SIDE_A) await cutOff(h, SIDE_B)
  for (const h of SIDE_B) await cutOff(h, SIDE_A)
  let last: string[] = []
  try {
    await mesh.waitFor('each side marks the other dead', async () => {
      last = []
      let ok = true
      for (const [side, other] of [[SIDE_A, SIDE_B], [SIDE_B, SIDE_A]] as const) {
        for (const h of side) {
          const i = await mesh.tryInfo(h)
          if (i === undefined) { last.push(`${h}: no info`); ok = false; continue }
          const v = statuses(i, other)
          last.push(`${h}: ${v.join(' ')}`)
          if (v.some(s => !s.endsWith('=dead'))) ok = false
        }
      }
      return ok
    }, LIMIT_MS, 250)
  } catch (err) {
    throw new Error(`${(err as Error).message}; last views: ${last.join('; ')}`)
  }
  console.log(`# split: each side marked the other dead ${Date.now() - tSplit} ms after the cut`)
  // the cut is real: no overlay ping crosses it; and each side is still one mesh
  for (const [a, b] of [['pub1', 'pub3'], ['pub4', 'pub2']] as const) {
    const r = await lab.ping(a, infos.get(b)!.ipv4, { count: 2, timeoutMs: 2000 })
    assert.equal(r.received, 0, `${a}→${b} must not get through the split`)
  }
  for (const side of [SIDE_A, SIDE_B]) {
    for (const h of side) {
      const v = statuses(await mesh.info(h), side.filter(x => x !== h))
      assert.ok(v.every(s => s.endsWith('=alive')), `${h} still sees its own side alive: ${v.join(' ')}`)
    }
  }
  await waitAllPairsPing(mesh, SIDE_A, infos, LIMIT_MS)
  await waitAllPairsPing(mesh, SIDE_B, infos, LIMIT_MS)

  // heal
  const tHeal = Date.now()
  for (const h of HOSTS) await heal(h)
  infos = await waitAllAlive(mesh, HOSTS, LIMIT_MS)
  const aliveMs = Date.now() - tHeal
  await waitAllPairsPing(mesh, HOSTS, infos, LIMIT_MS)
  console.log(`# healed: everyone alive everywhere ${aliveMs} ms, all 40 ordered pings ${Date.now() - tHeal} ms after the rules went`)
  for (const h of HOSTS) assert.equal(infos.get(h)!.peers.length, 4, `${h} lists exactly the 4 others`)
})
