/**
 * The Prometheus endpoint on real WireGuard (wireguard-go) in network namespaces: 3 public
 * hosts, each agent with --metrics-listen 127.0.0.1:9586 in its namespace. A scrape over HTTP
 * passes `promtool check metrics`; after traffic the per-peer byte counters grew; after a peer's
 * WireGuard entry is removed behind the agent's back and re-created by it on its next plan
 * (WireGuard's counters restart at 0), every `_total` of the next scrape is still ≥ the one
 * before, and the peer's exported tx carries the old value.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { Lab } from '../lab/lab.js'
import { WgmeshLab, waitAllAlive, type InfoJson } from './wgmesh-lab.js'

const HOSTS = ['pub1', 'pub2', 'pub3']
let lab: Lab
let mesh: WgmeshLab
let infos = new Map<string, InfoJson>()

before(async () => {
  Lab.requireRoot()
  lab = await Lab.up({ public: 3, natted: 0 })
  mesh = new WgmeshLab(lab)
  const metrics = ['--metrics-listen', '127.0.0.1:9586']
  await mesh.start('pub1', 'up', metrics)
  const keyFile = `${mesh.node('pub1').stateDir}/mesh.key`
  for (const h of ['pub2', 'pub3']) await mesh.start(h, 'join', ['--peer', lab.host('pub1').ip, '--mesh-key-file', keyFile, ...metrics])
  infos = await waitAllAlive(mesh, HOSTS, 60_000)
})

after(async () => {
  await lab?.down()
  mesh?.cleanup()
})

/** GET http://127.0.0.1:9586/metrics inside `host`'s namespace. */
async function scrape (host: string): Promise<string> {
  const code = 'const r = await fetch("http://127.0.0.1:9586/metrics"); if (r.status !== 200) process.exit(3); process.stdout.write(await r.text())'
  const out = await lab.run(host, [process.execPath, '--input-type=module', '-e', code], { timeoutMs: 10_000 })
  await new Promise(resolve => setTimeout(resolve, 1100)) // the next scrape gets a fresh render
  return out
}

function samples (text: string): Map<string, number> {
  const out = new Map<string, number>()
  for (const l of text.split('\n')) {
    if (l === '' || l.startsWith('#')) continue
    const i = l.lastIndexOf(' ')
    out.set(l.slice(0, i), Number(l.slice(i + 1)))
  }
  return out
}

function promtool (text: string): void {
  const p = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' })
  assert.equal(p.error, undefined, 'promtool runs (Debian package prometheus)')
  assert.equal(p.status, 0, `promtool check metrics:\n${p.stdout}${p.stderr}`)
}

/** Every `_total` sample of `before` is in `after` with a value ≥. */
function monotonic (before: Map<string, number>, after: Map<string, number>, what: string): number {
  let n = 0
  for (const [k, v] of before) {
    if (!/_total(\{|$)/.test(k)) continue
    const now = after.get(k)
    assert.ok(now !== undefined && now >= v, `${what}: ${k} went from ${v} to ${now}`)
    n++
  }
  return n
}

/** rx, tx of `peerKey` in `host`'s wg dump (undefined: no such peer). */
async function wgCounters (host: string, peerKey: string): Promise<[number, number] | undefined> {
  const line = (await mesh.wgDump(host)).split('\n').find(l => l.startsWith(`${peerKey}\t`))
  if (line === undefined) return undefined
  const f = line.split('\t')
  return [Number(f[5]), Number(f[6])]
}

test('scrapes over HTTP pass promtool; counters only go up across traffic and a re-created peer entry', async () => {
  const p2 = infos.get('pub2')!
  const l2 = `peer="pub2",node_id="${p2.nodeId}"`
  // 'alive' is the record; the tunnel's first handshake may come a moment later
  await mesh.waitFor('pub1 has a handshake with pub2', async () => {
    const p = (await mesh.tryInfo('pub1'))?.peers.find(x => x.name === 'pub2')
    return p?.path === 'direct' && (p.latestHandshake ?? 0) > 0
  }, 20_000, 250)
  const s0text = await scrape('pub1')
  promtool(s0text)
  const s0 = samples(s0text)
  assert.equal(s0.get(`wgmesh_peer_path{${l2},path="direct"}`), 1, 'pub2 is direct from pub1')
  assert.equal(s0.get('wgmesh_nat_type{type="public"}'), 1)
  assert.ok((s0.get(`wgmesh_peer_last_handshake_timestamp_seconds{${l2}}`) ?? 0) > Date.now() / 1000 - 300, 'a recent handshake')
  assert.ok(s0.has(`wgmesh_peer_rtt_seconds{${l2}}`), 'an RTT for pub2')
  assert.equal(s0.get('wgmesh_build_info{version="0.1.0"}'), 1)

  // traffic: 30 pings of 1000 bytes pub1 → pub2
  await lab.run('pub1', ['ping', '-n', '-q', '-i', '0.05', '-c', '30', '-s', '1000', p2.ipv4], { timeoutMs: 20_000 })
  const s1text = await scrape('pub1')
  promtool(s1text)
  const s1 = samples(s1text)
  const grew = (s1.get(`wgmesh_peer_tx_bytes_total{${l2}}`) ?? 0) - (s0.get(`wgmesh_peer_tx_bytes_total{${l2}}`) ?? 0)
  assert.ok(grew >= 30 * 1000, `tx to pub2 grew by the pings (${grew} B)`)
  const n1 = monotonic(s0, s1, 'after traffic')

  // re-create pub2's entry on pub1 behind the agent's back: WireGuard's counters restart. The
  // agent re-plans on the next membership change (pub3 restarts: a newer record) and adds it back
  const before = (await wgCounters('pub1', p2.wgPublicKey))!
  const iface = mesh.node('pub1').iface
  await lab.run('pub1', ['wg', 'set', iface, 'peer', p2.wgPublicKey, 'remove'])
  const t0 = Date.now()
  await mesh.node('pub3').proc!.kill('SIGTERM')
  await mesh.start('pub3', 'join', ['--metrics-listen', '127.0.0.1:9586'])
  await mesh.waitFor('pub2 re-added to pub1\'s interface', async () => (await wgCounters('pub1', p2.wgPublicKey)) !== undefined, 30_000, 200)
  const readdMs = Date.now() - t0
  // some traffic on the new entry, then the scrape
  await lab.run('pub1', ['ping', '-n', '-q', '-i', '0.2', '-c', '5', '-w', '15', p2.ipv4], { timeoutMs: 20_000 }).catch(() => '')
  const after = (await wgCounters('pub1', p2.wgPublicKey))!
  assert.ok(after[1] < before[1], `the entry was re-created: WireGuard's tx counter restarted (${before[1]} → ${after[1]})`)
  const s2text = await scrape('pub1')
  promtool(s2text)
  const s2 = samples(s2text)
  const n2 = monotonic(s1, s2, 'after the re-created entry')
  const tx2 = s2.get(`wgmesh_peer_tx_bytes_total{${l2}}`)!
  assert.ok(tx2 >= s1.get(`wgmesh_peer_tx_bytes_total{${l2}}`)! + after[1], `carried: ${tx2} ≥ ${s1.get(`wgmesh_peer_tx_bytes_total{${l2}}`)} + ${after[1]}`)
  // a last scrape of every host passes promtool too
  for (const h of ['pub2', 'pub3']) promtool(await scrape(h))
  console.log(`# promtool ok on 5 scrapes; ${n1} and ${n2} _total samples monotonic; pub2's entry re-added ${readdMs} ms after removal (pub3 restarted), WireGuard tx ${before[1]} → ${after[1]} B, exported ${s1.get(`wgmesh_peer_tx_bytes_total{${l2}}`)} → ${tx2} B`)
})
