/**
 * One-of-N gateway failover on real WireGuard, the scenario of test/netns/gateway-failover.test.ts:
 * pub1, pub2, pub3 reach a service LAN (203.0.113.224/28, host svc .238) and advertise it in
 * group "svc" with priorities 300/200/100 and `--route-return preferred`; pub4 (the client)
 * runs `ping -D -i 0.05` to svc through the mesh the whole time. RUNS switches per setting:
 *   - failover: kill -9 of the active gateway's agent, then its eth0 and svc0 down (the host is
 *     off the network). failover gap = the longest interval between two consecutive replies
 *     whose later reply came after the kill; info switch = when pub4's agent switched its
 *     active gateway (`info --json` groups[].active.since, pub4's own Date.now(); read once the
 *     data path is back, so no `wgmesh info` process competes for the 2 cores during the gap)
 *     minus the moment of the kill
 *   - return: links up, default route back, the agent restarted with the same state dir and
 *     argv; being 'preferred' and the best priority, it takes the role back after its hold-down
 *     (5 s of serving). return gap = the longest interval between consecutive replies after the
 *     restart began (the normal interval is 50 ms: ~50 means no gap); return after = restart →
 *     pub4's switch back. Then the next switch kills the same gateway again (always pub1 → pub2).
 * Every switch is checked on the service LAN itself (nft counters in svc per gateway address, as
 * in the test): after the failover only the next gateway carries the pings, after the return
 * only the first one again.
 * Two timer settings, one fresh lab each: the lab's test timers (--heartbeat 500ms --dead-after
 * 2s, what WgmeshLab uses) and the CLI defaults (--heartbeat 1s --dead-after 3s); agents are
 * spawned here (WgmeshLab.launch forces the test timers).
 * Usage: run.sh [RUNS] failover [lab|default]   (RUNS default 10; default: both settings)
 */
import { Lab, type LabProcess } from '../../test/lab/lab.js'
import { WgmeshLab, BUNDLE, type InfoJson } from '../../test/netns/wgmesh-lab.js'
import { median, sleep } from './measure.js'

const RUNS = Number(process.argv[2] ?? 10)
const ONLY = process.argv[3] ?? 'all'
const ROUTE = '203.0.113.224/28'
const GWS = ['pub1', 'pub2', 'pub3']
const PRIO: Record<string, number> = { pub1: 300, pub2: 200, pub3: 100 }
const CLIENT = 'pub4'
const PING_INTERVAL_S = 0.05
const LIMIT_MS = 60_000

interface Setting { key: string, label: string, heartbeat: string, deadAfter: string }
const SETTINGS: Setting[] = [
  { key: 'lab', label: 'lab timers (heartbeat 500 ms, dead-after 2 s)', heartbeat: '500ms', deadAfter: '2s' },
  { key: 'default', label: 'defaults (heartbeat 1 s, dead-after 3 s)', heartbeat: '1s', deadAfter: '3s' }
]

interface Cycle { killed: string, next: string, gapMs: number, infoMs: number, returnGapMs: number, returnMs: number }

interface GroupJson { group: string, routes: string[], active?: { name: string, nodeId: string, since: number }, members: Array<{ name: string, priority: number }> }

async function group (mesh: WgmeshLab, host: string): Promise<GroupJson | undefined> {
  const i = await mesh.tryInfo(host) as (InfoJson & { groups?: GroupJson[] }) | undefined
  return i?.groups?.find(g => g.group === 'svc')
}

async function until (what: string, cond: () => Promise<boolean>, timeoutMs: number, stepMs: number, detail = async (): Promise<string> => ''): Promise<void> {
  const t0 = Date.now()
  for (;;) {
    if (await cond()) return
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms: ${what} ${await detail()}`)
    await sleep(stepMs)
  }
}

/** ICMP echo requests svc received from each gateway's svc0 address (the gateways masquerade). */
async function installCounters (lab: Lab): Promise<void> {
  const gws = lab.serviceLan!.gateways
  const lines = ['table inet gwbench {', ...gws.map(g => `  counter req_${g.host} {}`),
    '  chain in { type filter hook input priority 0; policy accept;',
    ...gws.map(g => `    ip saddr ${g.ip} icmp type echo-request counter name req_${g.host}`), '  }', '}']
  const r = await lab.exec('svc', ['nft', '-f', '-'], { input: lines.join('\n') + '\n' })
  if (r.code !== 0) throw new Error(`nft in svc: ${r.stderr}`)
}

async function svcRequests (lab: Lab): Promise<Record<string, number>> {
  const text = await lab.run('svc', ['nft', 'list', 'counters', 'table', 'inet', 'gwbench'])
  const out: Record<string, number> = {}
  for (const m of text.matchAll(/counter req_(\w+) \{\s*packets (\d+)/g)) out[m[1]!] = Number(m[2])
  return out
}

/** Which gateways carried pub4's pings during one second (≥ 10 of the ~20 requests each). */
async function carriers (lab: Lab): Promise<string[]> {
  const a = await svcRequests(lab)
  await sleep(1000)
  const b = await svcRequests(lab)
  return GWS.filter(h => (b[h] ?? 0) - (a[h] ?? 0) >= 10)
}

/** reply times (epoch ms) of a `ping -D` log */
const replyTimes = (log: string): number[] => [...log.matchAll(/^\[(\d+\.\d+)\] \d+ bytes from/gm)].map(m => Number(m[1]) * 1000)

/** the longest interval between consecutive replies whose later reply is in (from, to] */
function maxGap (ts: number[], from: number, to: number): number {
  let gap = NaN
  for (let i = 1; i < ts.length; i++) {
    if (ts[i]! > from && ts[i]! <= to) gap = Math.max(Number.isNaN(gap) ? 0 : gap, ts[i]! - ts[i - 1]!)
  }
  return Math.round(gap)
}

async function runSetting (s: Setting): Promise<Cycle[]> {
  const lab = await Lab.up({ public: 4, natted: 0, serviceLan: { hosts: GWS } })
  const mesh = new WgmeshLab(lab)
  const procs = new Map<string, LabProcess>()
  const argvOf = new Map<string, string[]>()
  const cycles: Cycle[] = []
  try {
    const svcIp = lab.serviceLan!.svcIp
    const pub1 = lab.host('pub1').ip
    const spawnAgent = (h: string, label: string): void => { procs.set(h, lab.spawn(label, h, argvOf.get(h)!)) }
    const base = (h: string, cmd: 'up' | 'join'): string[] => [process.execPath, BUNDLE, cmd, '--state-dir', mesh.node(h).stateDir,
      '--interface', mesh.node(h).iface, '--name', h, '--heartbeat', s.heartbeat, '--dead-after', s.deadAfter, '--log-format', 'json']
    const gw = (h: string): string[] => ['--advertise-route', ROUTE, '--route-group', 'svc', '--route-priority', String(PRIO[h]), '--route-return', 'preferred']

    argvOf.set('pub1', [...base('pub1', 'up'), ...gw('pub1')])
    spawnAgent('pub1', 'agent-pub1')
    await until('pub1 serving', async () => (await mesh.tryInfo('pub1')) !== undefined, 20_000, 250)
    const key = ['--peer', pub1, '--mesh-key-file', `${mesh.node('pub1').stateDir}/mesh.key`]
    for (const h of ['pub2', 'pub3']) argvOf.set(h, [...base(h, 'join'), ...gw(h), ...key])
    argvOf.set(CLIENT, [...base(CLIENT, 'join'), ...key])
    for (const h of ['pub2', 'pub3', CLIENT]) spawnAgent(h, `agent-${h}`)
    const top = [...GWS].sort((a, b) => PRIO[b]! - PRIO[a]!)[0]!
    const complete = async (): Promise<boolean> => { const g = await group(mesh, CLIENT); return g?.active?.name === top && g.members.length === GWS.length }
    const seen = async (): Promise<string> => `(pub4 sees ${JSON.stringify(await group(mesh, CLIENT))})`
    await until(`${CLIENT} sees the group complete, ${top} active`, complete, LIMIT_MS, 500, seen)
    await until(`${CLIENT} pings svc`, async () => (await lab.ping(CLIENT, svcIp, { count: 1, timeoutMs: 1000 })).ok, 30_000, 250)
    await installCounters(lab)
    const router = /default via (\S+)/.exec(await lab.run(top, ['ip', '-4', 'route', 'show', 'default']))?.[1] ?? '198.18.0.1'
    await sleep(2000)

    for (let i = 1; i <= RUNS; i++) {
      const g0 = await group(mesh, CLIENT)
      const killed = g0?.active?.name ?? ''
      if (!GWS.includes(killed)) throw new Error(`no active gateway before switch ${i}: ${JSON.stringify(g0)}`)
      const next = GWS.filter(h => h !== killed).sort((a, b) => PRIO[b]! - PRIO[a]!)[0]!
      const ping = lab.spawn(`ping-svc-${i}`, CLIENT, ['ping', '-D', '-n', '-i', String(PING_INTERVAL_S), svcIp])
      try {
        await sleep(2000)
        const before = await carriers(lab)
        if (before.join() !== killed) throw new Error(`switch ${i}: before the kill svc got pings through ${before.join() || 'nobody'}, not ${killed}`)

        // failover: the active gateway's agent dies and its host leaves the network
        const tKill = Date.now()
        await procs.get(killed)!.kill('SIGKILL')
        await lab.run(killed, ['ip', 'link', 'set', 'eth0', 'down'])
        await lab.run(killed, ['ip', 'link', 'set', 'svc0', 'down'])
        // the data path is back (single pings; no node process runs during the gap)
        await until(`${CLIENT} reaches svc again after ${killed} went`, async () => (await lab.ping(CLIENT, svcIp, { count: 1, timeoutMs: 1000 })).ok, 30_000, 0, seen)
        await sleep(1000)
        const g1 = await group(mesh, CLIENT)
        if (g1?.active?.name !== next) throw new Error(`switch ${i}: ${CLIENT} sees ${g1?.active?.name ?? 'no'} active, not ${next}`)
        const infoMs = g1.active.since - tKill
        const during = await carriers(lab)
        if (during.join() !== next) throw new Error(`switch ${i}: after the failover svc got pings through ${during.join() || 'nobody'}, not ${next}`)

        // return: the host back on the network, its agent restarted as before
        const tRet = Date.now()
        await lab.run(killed, ['ip', 'link', 'set', 'eth0', 'up'])
        await lab.run(killed, ['ip', 'link', 'set', 'svc0', 'up'])
        await lab.run(killed, ['ip', 'route', 'replace', 'default', 'via', router])
        spawnAgent(killed, `agent-${killed}-${i}`)
        await until(`${CLIENT} sees ${killed} back and active`, async () => {
          const g = await group(mesh, CLIENT)
          return g?.active?.name === killed && g.members.length === GWS.length
        }, LIMIT_MS, 500, seen)
        const g2 = await group(mesh, CLIENT)
        const returnMs = g2!.active!.since - tRet
        await sleep(2000)
        const after = await carriers(lab)
        if (after.join() !== killed) throw new Error(`switch ${i}: after the return svc got pings through ${after.join() || 'nobody'}, not ${killed}`)

        await ping.kill('SIGINT')
        await ping.wait()
        const ts = replyTimes(ping.log())
        const tEnd = Date.now()
        const c: Cycle = { killed, next, gapMs: maxGap(ts, tKill, tRet), infoMs, returnGapMs: maxGap(ts, tRet, tEnd), returnMs }
        cycles.push(c)
        console.log(`${s.key} ${String(i).padStart(2)}: ${killed} → ${next}: gap ${c.gapMs} ms, info switch ${c.infoMs} ms; ` +
          `${killed} back: active again after ${(c.returnMs / 1000).toFixed(1)} s, return gap ${c.returnGapMs} ms (${ts.length} replies)`)
      } finally {
        if (!ping.exited) { await ping.kill('SIGINT'); await ping.wait() }
      }
      await sleep(1000)
    }
    return cycles
  } finally {
    await lab.down()
    mesh.cleanup()
  }
}

async function main (): Promise<void> {
  Lab.requireRoot()
  const settings = SETTINGS.filter(s => ONLY === 'all' || s.key === ONLY)
  if (settings.length === 0) throw new Error(`unknown setting '${ONLY}' (lab, default or all)`)
  const results = new Map<Setting, Cycle[]>()
  for (const s of settings) results.set(s, await runSetting(s))
  const mm = (xs: number[], unit = ''): string => `${median(xs).toFixed(0)} / ${Math.max(...xs).toFixed(0)}${unit}`
  console.log('')
  console.log(`Gateway failover: 3 gateways (priorities 300/200/100, --route-return preferred), client pings svc every ${PING_INTERVAL_S * 1000} ms; ` +
    'each switch = kill -9 of the active agent + its eth0/svc0 down, then back')
  console.log('')
  console.log('| setting | n | failover gap median / max (ms) | info switch median / max (ms) | return gap median / max (ms) | back active after median (s) |')
  console.log('| --- | ---: | ---: | ---: | ---: | ---: |')
  for (const [s, c] of results) {
    console.log(`| ${s.label} | ${c.length} | ${mm(c.map(x => x.gapMs))} | ${mm(c.map(x => x.infoMs))} | ${mm(c.map(x => x.returnGapMs))} | ${(median(c.map(x => x.returnMs)) / 1000).toFixed(1)} |`)
  }
  console.log('')
  console.log('Wirewrap: 60 s etcd lease (its docs: clients switch \'usually after a few seconds\'); Tailscale: see below')
  console.log('Tailscale (https://tailscale.com/kb/1115/high-availability): "Failover can take up to ~15 seconds after a primary connector is taken offline."')
}

main().catch((err: Error) => { console.error(err.stack ?? err.message); process.exit(1) })
