/**
 * wgmesh at scale: N (default 50) agents in namespaces, half public, half behind their own
 * cone NAT (the lab has at most 48 NAT routers; beyond that the rest are public).
 *   t_full  t0 = N agents spawned at once (pub1 `up`, the others `join --peer <pub1>`) →
 *           every node has had an answer from every other node's overlay IPv4 once.
 *           Method: one long-lived `fping -l -p 1000` per node towards all others (no process
 *           per probe: at this scale forks would eat the 2 cores); a pair's time is fping's
 *           receive timestamp of its first answer (late by ≤ 1 s, the probe period); each fping
 *           is stopped once all its targets answered. N*(N-1) pairs, each answered once;
 *           quantiles of the pair times are printed too.
 *   idle    5 s later, a 20 s window: bytes crossing the internet bridge per node, agent and
 *           wireguard-go RSS (median, max) and CPU (% of one core).
 *   join    then an (N+1)th agent (behind its own cone NAT) `join --peer <pub1>` → it has had
 *           an answer from all N members.
 * Usage: run.sh [RUNS] large [N]
 */
import { readFileSync } from 'node:fs'
import { Lab, type LabProcess } from '../../test/lab/lab.js'
import { WgmeshLab, BUNDLE } from '../../test/netns/wgmesh-lab.js'
import { prepareIdentities } from './identities.js'
import { idleWindow, median, nsPids, pingAll, pingLoop, sleep, stat } from './measure.js'

const RUNS = Number(process.argv[2] ?? 1)
const N = Number(process.argv[3] ?? 50)
const MAX_NAT = 48
const TIMEOUT_S = Number(process.env.BENCH_TIMEOUT_S ?? 300)
const SETTLE_MS = 5000
const WINDOW_MS = 20_000

interface Result { tFullMs: number, pairs: number, q50: number, q90: number, q99: number, joinMs: number, joined: number, kibPerNode: number, pktPerNode: number, rss: number, rssMax: number, cpu: number, cpuMax: number, child: number, wgRss: number, wgCpu: number, died: number }

const quantile = (xs: number[], q: number): number => { const s = [...xs].sort((a, b) => a - b); return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.floor(q * s.length))]! }
const loadavg = (): string => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')

async function oneRun (run: number): Promise<Result> {
  const nat = Math.min(MAX_NAT, Math.floor(N / 2))
  const pub = N - nat
  const joinerIsNat = nat < MAX_NAT
  const lab = await Lab.up({ public: pub + (joinerIsNat ? 0 : 1), natted: nat + (joinerIsNat ? 1 : 0), nat: 'cone' })
  const mesh = new WgmeshLab(lab)
  try {
    const members = [...Array.from({ length: pub }, (_, i) => `pub${i + 1}`), ...Array.from({ length: nat }, (_, i) => `nat${i + 1}`)]
    const joiner = joinerIsNat ? `nat${nat + 1}` : `pub${pub + 1}`
    const { keyFile, ip } = prepareIdentities(mesh, [...members, joiner])
    const seed = lab.host('pub1').ip
    const agent = (h: string): LabProcess => lab.spawn(`agent-${h}`, h, [process.execPath, BUNDLE, h === 'pub1' ? 'up' : 'join', '--state-dir', mesh.node(h).stateDir,
      '--interface', mesh.node(h).iface, '--name', h, '--mesh-key-file', keyFile, '--log-format', 'json', ...(h === 'pub1' ? [] : ['--peer', seed])])

    const t0 = Date.now()
    const procs = new Map(members.map(h => [h, agent(h)]))
    const all = await pingAll(lab, members, ip, t0, { method: 'fping', fpingPeriodMs: 1000, timeoutS: TIMEOUT_S })
    const died = [...procs].filter(([, p]) => p.exited).map(([h]) => h)
    console.log(`run ${run}: ${all.times.length}/${N * (N - 1)} pairs in ${((Date.now() - t0) / 1000).toFixed(1)} s (load ${loadavg()})` +
      (died.length > 0 ? `; agents exited: ${died.join(' ')}` : '') + (all.missing.length > 0 ? `; e.g. missing ${all.missing.slice(0, 5).join(' ')}` : ''))

    await sleep(SETTLE_MS)
    const pids = new Map<string, number>()
    for (const [h, p] of procs) {
      if (p.exited) continue
      pids.set(`agent:${h}`, p.pid)
      for (const pid of await nsPids(lab, h, 'wireguard-go')) pids.set(`wg:${h}:${pid}`, pid)
    }
    const idle = await idleWindow(lab, pids, WINDOW_MS)

    const t1 = Date.now()
    procs.set(joiner, agent(joiner))
    const got = await pingLoop(lab, joiner, members.map(h => ip.get(h)!), t1, `ping-${joiner}`, { method: 'fping', fpingPeriodMs: 1000, timeoutS: 120 }).done
    const r: Result = {
      tFullMs: all.fullMs,
      pairs: all.times.length,
      q50: quantile(all.times, 0.5),
      q90: quantile(all.times, 0.9),
      q99: quantile(all.times, 0.99),
      joinMs: got.size === N ? Math.max(...got.values()) : NaN,
      joined: got.size,
      kibPerNode: idle.bytesPerS / 1024 / N,
      pktPerNode: idle.packetsPerS / N,
      rss: stat(idle, 'agent:', 'rssMiB').median,
      rssMax: stat(idle, 'agent:', 'rssMiB').max,
      cpu: stat(idle, 'agent:', 'cpuPct').median,
      cpuMax: stat(idle, 'agent:', 'cpuPct').max,
      child: stat(idle, 'agent:', 'childCpuPct').median,
      wgRss: stat(idle, 'wg:', 'rssMiB').median,
      wgCpu: stat(idle, 'wg:', 'cpuPct').median,
      died: died.length
    }
    const f = (x: number, d = 1): string => Number.isFinite(x) ? x.toFixed(d) : '-'
    console.log(`run ${run}: t_full ${f(r.tFullMs, 0)} ms (pairs answered by: 50% ${f(r.q50, 0)}, 90% ${f(r.q90, 0)}, 99% ${f(r.q99, 0)} ms), ` +
      `join ${f(r.joinMs, 0)} ms (${r.joined}/${N}), idle ${f(r.kibPerNode, 2)} KiB/s ${f(r.pktPerNode)} pkt/s per node, ` +
      `agent RSS ${f(r.rss)} (max ${f(r.rssMax)}) MiB CPU ${f(r.cpu, 2)}% (max ${f(r.cpuMax, 2)}%, +children ${f(r.child, 2)}%), ` +
      `wireguard-go RSS ${f(r.wgRss)} MiB CPU ${f(r.wgCpu, 2)}%`)
    return r
  } finally {
    await lab.down()
    mesh.cleanup()
  }
}

async function main (): Promise<void> {
  Lab.requireRoot()
  if (!Number.isInteger(N) || N < 2) throw new Error(`bad N '${process.argv[3]}'`)
  const runs: Result[] = []
  for (let i = 1; i <= RUNS; i++) runs.push(await oneRun(i))
  const m = (k: keyof Result): string => { const x = median(runs.map(r => r[k])); return Number.isFinite(x) ? (x >= 100 ? x.toFixed(0) : x.toFixed(2)) : '-' }
  const nat = Math.min(MAX_NAT, Math.floor(N / 2))
  console.log('')
  console.log(`wgmesh large mesh: ${N} agents (${N - nat} public, ${nat} cone NAT), netns lab, wireguard-go, median of ${RUNS} run(s)`)
  console.log(`| measure | value |\n| --- | ---: |`)
  console.log(`| t_full: ${N} spawned → every node answered by all ${N - 1} others (ms) | ${m('tFullMs')} |`)
  console.log(`| pairs answered by 50% / 90% / 99% (ms) | ${m('q50')} / ${m('q90')} / ${m('q99')} |`)
  console.log(`| join: node ${N + 1} spawned → answered by all ${N} (ms) | ${m('joinMs')} |`)
  console.log(`| idle traffic per node (KiB/s, pkt/s) | ${m('kibPerNode')}, ${m('pktPerNode')} |`)
  console.log(`| agent RSS median / max (MiB) | ${m('rss')} / ${m('rssMax')} |`)
  console.log(`| agent idle CPU median / max (% of a core) | ${m('cpu')} / ${m('cpuMax')} |`)
  console.log(`| agent's children idle CPU (%) | ${m('child')} |`)
  console.log(`| wireguard-go RSS (MiB), idle CPU (%) | ${m('wgRss')}, ${m('wgCpu')} |`)
  const bad = runs.filter(r => r.pairs < N * (N - 1) || r.died > 0 || r.joined < N)
  if (bad.length > 0) console.log(`WARNING: ${bad.length} run(s) incomplete (pairs ${runs.map(r => r.pairs).join('/')} of ${N * (N - 1)}, agents exited ${runs.map(r => r.died).join('/')})`)
}

main().catch((err: Error) => { console.error(err.stack ?? err.message); process.exit(1) })
