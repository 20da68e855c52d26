/**
 * `wgmesh info` / `wgmesh status` on real WireGuard in network namespaces: 3 public hosts.
 * `info --json` has `schema: 1`, the version and per alive peer a recent RTT through the tunnel
 * that is plausible beside ICMP pings over the same tunnel (not below half their minimum, not
 * above their average + 20 ms; this kernel has no netem to add a known delay); the compact
 * table fits 100 columns and shows it; `--wide` has every column.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { Lab } from '../lab/lab.js'
import { BUNDLE, WgmeshLab, waitAllAlive } from './wgmesh-lab.js'

const HOSTS = ['pub1', 'pub2', 'pub3']
let lab: Lab
let mesh: WgmeshLab

interface Peer { name: string, status: string, rttMs?: number, rttAgeS?: number, rxTotal?: number }
interface Info { schema: number, version: string, peers: Peer[] }

before(async () => {
  Lab.requireRoot()
  lab = await Lab.up({ public: 3, natted: 0 })
  mesh = new WgmeshLab(lab)
  await mesh.start('pub1', 'up')
  const keyFile = `${mesh.node('pub1').stateDir}/mesh.key`
  for (const h of ['pub2', 'pub3']) await mesh.start(h, 'join', ['--peer', lab.host('pub1').ip, '--mesh-key-file', keyFile])
  await waitAllAlive(mesh, HOSTS, 60_000)
})

after(async () => {
  await lab?.down()
  mesh?.cleanup()
})

async function cli (host: string, args: string[]): Promise<string> {
  return await lab.run(host, [process.execPath, BUNDLE, ...args, '--state-dir', mesh.node(host).stateDir], { timeoutMs: 10_000 })
}

test('info --json: schema 1, version, a plausible RTT per alive peer', async () => {
  await mesh.waitFor('RTT samples for every peer on every host', async () => {
    for (const h of HOSTS) {
      const i = JSON.parse(await cli(h, ['info', '--json'])) as Info
      if (!i.peers.every(p => p.status === 'alive' && p.rttMs !== undefined)) return false
    }
    return true
  }, 30_000, 500)
  await new Promise(resolve => setTimeout(resolve, 3000)) // a few heartbeats (500 ms) of samples: the first handshakes are smoothed away
  const info = JSON.parse(await cli('pub1', ['info', '--json'])) as Info & { peers: Array<Peer & { ipv4: string }> }
  assert.equal(info.schema, 1)
  assert.equal(info.version, '0.1.0')
  const seen: string[] = []
  for (const p of info.peers) {
    const out = await lab.run('pub1', ['ping', '-n', '-q', '-i', '0.05', '-c', '20', p.ipv4], { timeoutMs: 10_000 })
    const m = /= ([0-9.]+)\/([0-9.]+)\/([0-9.]+)\//.exec(out)
    assert.ok(m !== null, out)
    const [min, avg] = [Number(m[1]), Number(m[2])]
    assert.ok(p.rttMs! > 0 && p.rttMs! >= min * 0.5 && p.rttMs! <= avg + 20, `pub1→${p.name}: RTT ${p.rttMs} ms beside ICMP min ${min} / avg ${avg} ms`)
    assert.ok(p.rttAgeS !== undefined && p.rttAgeS <= 5, `${p.name}: a recent sample (${p.rttAgeS} s)`)
    seen.push(`${p.name} ${p.rttMs} ms (ICMP ${min}/${avg})`)
  }
  console.log(`# pub1 RTT: ${seen.join(', ')}`)
})

test('status (alias of info): compact table within 100 columns with RTT; --wide has every column', async () => {
  const out = await cli('pub1', ['status'])
  const lines = out.trimEnd().split('\n')
  const widest = Math.max(...lines.map(l => [...l].length))
  assert.ok(widest <= 100, `widest ${widest}:\n${out}`)
  const header = lines.find(l => l.startsWith('NAME'))!
  assert.deepEqual(header.split(/\s+/), ['NAME', 'IPV4', 'STATUS', 'PATH', 'RTT', 'HANDSHAKE'])
  assert.match(lines.find(l => l.startsWith('pub2'))!, /alive\s+direct\s+[0-9.]+ms\s+\d+s$/)
  // the same columns (their widths follow the values, and an RTT may change between the two calls)
  assert.deepEqual(await cli('pub1', ['info']).then(o => o.split('\n').find(l => l.startsWith('NAME'))?.split(/\s+/)), header.split(/\s+/), 'info prints the same table')
  const wide = await cli('pub1', ['info', '--wide'])
  assert.deepEqual(wide.split('\n').find(l => l.startsWith('NAME'))!.split(/\s+/), ['NAME', 'IPV4', 'IPV6', 'STATUS', 'PATH', 'ENDPOINT', 'RTT', 'HANDSHAKE', 'RX', 'TX', 'NAT', 'GOSSIP'])
  console.log(`# status: ${widest} columns\n${out.split('\n').map(l => `#   ${l}`).join('\n')}`)
})
