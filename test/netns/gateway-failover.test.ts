/**
 * One-of-N gateway failover on real WireGuard (issue 9): pub1, pub2, pub3 reach a service LAN
 * (203.0.113.224/28, host svc .238 that knows only its /28) and advertise it in one group with
 * priorities 300/200/100; pub4 pings svc continuously through the mesh.
 *   - only the active gateway carries the traffic: its svc0 counters move, the others' do not
 *     (the service LAN sees requests and sends replies only through the active one: masquerade)
 *   - kill -9 the active gateway's agent AND take its host off the network: the ping gap is
 *     ≤ 3 s (lab timers: heartbeat 500 ms, dead-after 2 s) and the traffic moves to pub2
 *   - pub1 comes back with --route-return sticky: pub2 stays active; pub1 restarted with
 *     'preferred': it takes the role back after the hold-down (5 s), and the traffic with it
 * Counted on the service LAN itself (nft counters in svc, per gateway address), not from logs.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { Lab, type LabProcess } from '../lab/lab.js'
import { WgmeshLab } from './wgmesh-lab.js'

const ROUTE = '203.0.113.224/28'
const GWS = ['pub1', 'pub2', 'pub3']
const PRIO: Record<string, string> = { pub1: '300', pub2: '200', pub3: '100' }
const LIMIT_MS = 60_000

let lab: Lab
let mesh: WgmeshLab
let svcIp = ''
let key = ''

const gwArgs = (h: string, policy = 'preferred'): string[] =>
  ['--advertise-route', ROUTE, '--route-group', 'svc', '--route-priority', PRIO[h]!, '--route-return', policy, '--mesh-key-file', key, ...(h === 'pub1' ? [] : ['--peer', lab.host('pub1').ip])]

interface GroupJson { group: string, routes: string[], active?: { name: string, since: number }, members: Array<{ name: string, priority: number }> }
async function group (host: string): Promise<GroupJson | undefined> {
  const i = await mesh.tryInfo(host) as (Awaited<ReturnType<WgmeshLab['tryInfo']>> & { groups?: GroupJson[] }) | undefined
  return i?.groups?.find(g => g.group === 'svc')
}

/**
 * Counters on the service host itself: ICMP echo requests it receives from, and replies it
 * sends to, each gateway's svc0 address (the gateways masquerade, so the source says which
 * one carried the request). Agents' own LAN traffic (beacons, SSDP) does not count.
 */
async function countOnSvc (): Promise<void> {
  const lines = ['table inet gwcount {']
  for (const g of lab.serviceLan!.gateways) lines.push(`  counter req_${g.host} {}`, `  counter rep_${g.host} {}`)
  lines.push('  chain in { type filter hook input priority 0; policy accept;')
  for (const g of lab.serviceLan!.gateways) lines.push(`    ip saddr ${g.ip} icmp type echo-request counter name req_${g.host}`)
  lines.push('  }', '  chain out { type filter hook output priority 0; policy accept;')
  for (const g of lab.serviceLan!.gateways) lines.push(`    ip daddr ${g.ip} icmp type echo-reply counter name rep_${g.host}`)
  lines.push('  }', '}')
  await lab.exec('svc', ['nft', '-f', '-'], { input: lines.join('\n') + '\n' }).then(r => { assert.equal(r.code, 0, r.stderr) })
}

async function svcIcmp (): Promise<Record<string, { req: number, rep: number }>> {
  const out: Record<string, { req: number, rep: number }> = {}
  const text = await lab.run('svc', ['nft', 'list', 'counters', 'table', 'inet', 'gwcount'])
  for (const m of text.matchAll(/counter (req|rep)_(\w+) \{\s*packets (\d+)/g)) {
    const e = out[m[2]!] ??= { req: 0, rep: 0 }
    e[m[1] as 'req' | 'rep'] = Number(m[3])
  }
  return out
}

/** Requests svc got through each gateway while `fn` ran (replies are checked to go back the same way). */
async function txDeltas (fn: () => Promise<void>): Promise<Record<string, number>> {
  const a = await svcIcmp()
  await fn()
  const b = await svcIcmp()
  const d: Record<string, number> = {}
  for (const h of GWS) {
    d[h] = b[h]!.req - a[h]!.req
    assert.equal(b[h]!.rep - a[h]!.rep, d[h], `svc answered through ${h} exactly what came through it`)
  }
  return d
}

/** Continuous ping pub4 → svc every 100 ms; returns the stop function, which yields the longest gap between replies. */
function pinger (): { stop: () => Promise<{ gapMs: number, replies: number, log: string }> } {
  const p: LabProcess = lab.spawn('ping-svc', 'pub4', ['ping', '-D', '-n', '-i', '0.1', '-W', '1', svcIp])
  return {
    stop: async () => {
      await p.kill('SIGINT')
      await p.wait()
      const log = p.log()
      const ts = [...log.matchAll(/^\[(\d+\.\d+)\] \d+ bytes from/gm)].map(m => Number(m[1]) * 1000)
      let gap = 0
      for (let i = 1; i < ts.length; i++) gap = Math.max(gap, ts[i]! - ts[i - 1]!)
      return { gapMs: Math.round(gap), replies: ts.length, log }
    }
  }
}

async function waitActive (name: string, timeoutMs = 30_000): Promise<void> {
  let seen = ''
  await mesh.waitFor(`pub4 sees ${name} active`, async () => {
    const g = await group('pub4')
    seen = JSON.stringify(g)
    return g?.active?.name === name
  }, timeoutMs, 100).catch((err: Error) => { throw new Error(`${err.message}; pub4 sees ${seen}`) })
}

before(async () => {
  Lab.requireRoot()
  lab = await Lab.up({ public: 4, natted: 0, serviceLan: { hosts: GWS } })
  mesh = new WgmeshLab(lab)
  svcIp = lab.serviceLan!.svcIp
  await countOnSvc()
  await mesh.start('pub1', 'up', ['--advertise-route', ROUTE, '--route-group', 'svc', '--route-priority', PRIO.pub1!])
  key = `${mesh.node('pub1').stateDir}/mesh.key`
  await Promise.all(['pub2', 'pub3'].map(async h => await mesh.start(h, 'join', gwArgs(h))))
  await mesh.start('pub4', 'join', ['--peer', lab.host('pub1').ip, '--mesh-key-file', key])
  await mesh.waitFor('pub4 sees the group with its 3 gateways, pub1 active', async () => {
    const g = await group('pub4')
    return g?.active?.name === 'pub1' && g.members.length === 3
  }, LIMIT_MS, 250)
})

after(async () => {
  await lab?.down()
  mesh?.cleanup()
})

test('the client reaches the service LAN through the active gateway only', async () => {
  await mesh.waitFor('pub4 pings svc', async () => (await lab.ping('pub4', svcIp, { count: 1, timeoutMs: 2000 })).ok, 20_000, 250)
  const g = await group('pub4')
  assert.deepEqual(g?.routes, [ROUTE])
  assert.deepEqual(g?.members.map(m => `${m.name}:${m.priority}`), ['pub1:300', 'pub2:200', 'pub3:100'])
  const d = await txDeltas(async () => { assert.ok((await lab.ping('pub4', svcIp, { count: 20, intervalMs: 50, timeoutMs: 10_000 })).ok) })
  assert.ok(d.pub1! >= 20, `pub1 carried the 20 requests to svc (svc0 tx +${d.pub1})`)
  assert.ok(d.pub2 === 0 && d.pub3 === 0, `nothing came through the standby gateways: ${JSON.stringify(d)}`)
  // the gateways themselves reach svc directly, and the kernel route exists on the client only
  const routes = await lab.run('pub4', ['ip', 'route', 'show', ROUTE])
  assert.match(routes, new RegExp(`dev ${mesh.node('pub4').iface} proto 109`))
  assert.equal((await lab.run('pub2', ['ip', 'route', 'show', 'proto', '109'])).trim(), '', 'a gateway does not route its own group into the mesh')
})

test('kill -9 of the active gateway and its host off the network: the ping gap is ≤ 3 s, through pub2', async () => {
  const ping = pinger()
  await new Promise(resolve => setTimeout(resolve, 2000))
  const before = await svcIcmp()
  const t0 = Date.now()
  await mesh.node('pub1').proc!.kill('SIGKILL')
  await lab.run('pub1', ['ip', 'link', 'set', 'eth0', 'down'])
  await lab.run('pub1', ['ip', 'link', 'set', 'svc0', 'down'])
  await waitActive('pub2')
  const switchedMs = Date.now() - t0
  await new Promise(resolve => setTimeout(resolve, 3000))
  const r = await ping.stop()
  const afterC = await svcIcmp()
  console.log(`# pub4 saw pub2 active ${switchedMs} ms after the kill; longest ping gap ${r.gapMs} ms (${r.replies} replies)`)
  assert.ok(r.replies > 40, `pings got through before and after: ${r.replies}`)
  assert.ok(r.gapMs <= 3000, `ping gap ${r.gapMs} ms ≤ 3 s`)
  assert.ok(afterC.pub2!.req - before.pub2!.req >= 20, `pub2 now carries the pings: ${JSON.stringify({ before, afterC })}`)
  assert.equal(afterC.pub3!.req - before.pub3!.req, 0, 'pub3 carries nothing')
})

test('return policy: sticky keeps pub2 when pub1 comes back; preferred gives pub1 the role back', async () => {
  await lab.run('pub1', ['ip', 'link', 'set', 'eth0', 'up'])
  await lab.run('pub1', ['ip', 'link', 'set', 'svc0', 'up'])
  await lab.run('pub1', ['ip', 'route', 'replace', 'default', 'via', '198.18.0.1']) // eth0 down dropped it
  await mesh.start('pub1', 'join', gwArgs('pub1', 'sticky'))
  await mesh.waitFor('pub4 sees pub1 back in the group', async () => (await group('pub4'))?.members.length === 3, LIMIT_MS, 250)
  const d = await txDeltas(async () => {
    await new Promise(resolve => setTimeout(resolve, 7000)) // past the 5 s hold-down
    assert.ok((await lab.ping('pub4', svcIp, { count: 20, intervalMs: 50, timeoutMs: 10_000 })).ok)
  })
  assert.equal((await group('pub4'))?.active?.name, 'pub2', 'sticky: pub2 stays active')
  assert.ok(d.pub2! >= 20 && d.pub1 === 0, `sticky: the traffic stays on pub2: ${JSON.stringify(d)}`)

  await mesh.node('pub1').proc!.kill('SIGTERM')
  await mesh.node('pub1').proc!.wait()
  await mesh.start('pub1', 'join', gwArgs('pub1', 'preferred'))
  await waitActive('pub1', 30_000)
  const d2 = await txDeltas(async () => { assert.ok((await lab.ping('pub4', svcIp, { count: 20, intervalMs: 50, timeoutMs: 10_000 })).ok) })
  assert.ok(d2.pub1! >= 20 && d2.pub2 === 0, `preferred: the traffic is back on pub1: ${JSON.stringify(d2)}`)
})
