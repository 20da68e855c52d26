/**
 * Where the time to a full mesh goes (a profiling aid, not a benchmark of record): the compare
 * bench's wgmesh start (4 public + 4 cone, all spawned at once, debug logs), then per agent the
 * time it served, when each peer was added to WireGuard (and how long after its record), and
 * each peer's first path; the seed's (pub1) first 60 log events. Times are ms since the spawn.
 * Usage: run.sh 1 timeline   (PROF_HOST=nat1[,pub1…] [PROF_DIR=…]: a CPU profile of those agents;
 *   IDLE_S=30: stay up that long after the full mesh first; TIMELINE_LOGS=DIR: keep the agents' logs;
 *   TIMELINE_PCAP=FILE: every UDP datagram the lab's internet switched, from before the spawn
 *   (tcpdump -i any in the internet's namespace: each one seen once per bridge port it crosses;
 *   WireGuard's message type is the first byte of the payload: 1 initiation, 2 response, 4 data))
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Lab, type LabProcess } from '../../test/lab/lab.js'
import { WgmeshLab, BUNDLE } from '../../test/netns/wgmesh-lab.js'
import { prepareIdentities } from './identities.js'
import { nsPids, PAIR_PING_MS, pingAll, procSample } from './measure.js'

Lab.requireRoot()
const lab = await Lab.up({ public: 4, natted: 4, nat: 'cone' })
try {
  const hosts = lab.hosts.map(h => h.name)
  const mesh = new WgmeshLab(lab)
  const { keyFile, ip } = prepareIdentities(mesh, hosts)
  const seed = lab.host(hosts[0]!).ip
  const daemons = new Map<string, LabProcess>()
  if (process.env.TIMELINE_PCAP !== undefined) {
    lab.spawn('pcap', 'internet', ['tcpdump', '-i', 'any', '-n', '-U', '-s', '96', '-w', process.env.TIMELINE_PCAP, 'udp'])
    await new Promise(resolve => setTimeout(resolve, 1000)) // tcpdump is listening
  }
  const t0 = Date.now()
  console.log(`t0 ${t0} (${new Date(t0).toISOString()})`)
  for (const h of hosts) {
    const n = mesh.node(h)
    // PROF_HOST=nat1,pub1: a V8 CPU profile of those agents, written to $PROF_DIR/<host> when they exit
    const prof = (process.env.PROF_HOST ?? '').split(',').includes(h) ? ['--cpu-prof', `--cpu-prof-dir=${join(process.env.PROF_DIR ?? '/tmp/wgmesh-prof', h)}`] : []
    daemons.set(h, lab.spawn(`agent-${h}`, h, [process.execPath, ...prof, BUNDLE, h === hosts[0] ? 'up' : 'join', '--state-dir', n.stateDir,
      '--interface', n.iface, '--name', h, '--mesh-key-file', keyFile, '--log-format', 'json', '--log-level', 'debug', ...(h === hosts[0] ? [] : ['--peer', seed])]))
  }
  const all = await pingAll(lab, hosts, ip, t0, { method: 'fping', fpingPeriodMs: PAIR_PING_MS, timeoutS: 60, labelPrefix: 'ping' })
  // CPU each agent used from its spawn to the full mesh (its own + its reaped children's, e.g. ip)
  const cpu = [...daemons].map(([h, p]) => { const s = procSample(p.pid); return `${h} ${s.ticks * 10}+${s.childTicks * 10}` })
  console.log(`cpu ms at t_full (own+children): ${cpu.join(' ')}`)
  // and the wireguard-go daemon each agent forked (not its child: it daemonizes)
  const wgCpu = await Promise.all(hosts.map(async h => `${h} ${(await nsPids(lab, h, 'wireguard-go')).map(pid => procSample(pid).ticks * 10).join('+')}`))
  console.log(`wireguard-go cpu ms at t_full: ${wgCpu.join(' ')}`)
  // gossip connections (TCP 51821, either end) per host: a full mesh of 8 needs 7
  const conns = await Promise.all(hosts.map(async h => `${h} ${(await lab.run(h, ['ss', '-Htn', 'state', 'established', '( sport = :51821 or dport = :51821 )'])).split('\n').filter(l => l.trim() !== '').length}`))
  console.log(`gossip TCP connections at t_full: ${conns.join(' ')}`)
  // IDLE_S=30: stay up that long after the full mesh (e.g. to profile the idle agent)
  await new Promise(resolve => setTimeout(resolve, Number(process.env.IDLE_S ?? 0) * 1000))
  const sorted = [...all.times].sort((a, b) => a - b)
  console.log(`t_full ${all.fullMs} ms; pair times p10 ${sorted[5]} p50 ${sorted[28]} p90 ${sorted[50]} max ${sorted[55]}`)
  console.log(`slowest pairs: ${[...all.pairs].sort((a, b) => b.ms - a.ms).slice(0, 10).map(p => `${p.pair} ${p.ms}`).join(', ')}`)
  {
    const ev = daemons.get('pub1')!.log().split('\n').filter(l => l.startsWith('{')).map(l => JSON.parse(l) as Record<string, unknown>)
    for (const e of ev.slice(0, 60)) console.log(`  pub1 ${Date.parse(e.ts as string) - t0} ${String(e.message)} ${JSON.stringify(e).slice(0, 160)}`)
  }
  // TIMELINE_LOGS=DIR: keep every agent's whole log there (the lab's logs go with it)
  if (process.env.TIMELINE_LOGS !== undefined) {
    mkdirSync(process.env.TIMELINE_LOGS, { recursive: true })
    for (const [h, p] of daemons) writeFileSync(join(process.env.TIMELINE_LOGS, `${h}.log`), p.log())
  }
  for (const [h, p] of daemons) {
    const ev = p.log().split('\n').filter(l => l.startsWith('{')).map(l => JSON.parse(l) as Record<string, unknown>)
    const at = (e: Record<string, unknown>): number => Date.parse(e.ts as string) - t0
    const serving = ev.find(e => e.message === 'wgmesh agent serving')
    const added = ev.filter(e => e.message === 'pair timeline: peer added')
    const paths = ev.filter(e => e.message === 'peer path')
    console.log(`${h.padEnd(5)} serving ${serving === undefined ? '-' : at(serving)} (start ${String(serving?.startMs)} [setup ${String(serving?.setupMs)} gossip ${String(serving?.gossipMs)} first apply ${String(serving?.firstApplyMs)}] process ${String(serving?.processMs)}, cpu ${String(serving?.cpuMs)} ms) | peers added ${added.map(e => `${String(e.peer)}@${at(e)}(+${String(e.msSinceRecord)})`).join(' ')}`)
    console.log(`      first paths ${paths.map(e => `${String(e.peer)}:${String(e.path)}@${at(e)}`).join(' ')}`)
    // how much work each agent did until the full mesh (debug events up to t_full)
    const until = ev.filter(e => at(e) <= all.fullMs)
    const count = (m: string): number => until.filter(e => e.message === m).length
    console.log(`      until t_full: published ${count('transport: published')} syncs ${count('transport: sync done')} applies ${count('wireguard applied')} connects ${count('transport: peer connected')} disconnects ${count('transport: peer disconnected')} events ${until.length}`)
  }
} finally {
  await lab.down()
}
