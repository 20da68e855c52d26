/**
 * wgmesh beside Nebula, same lab, same run: 4 public + 4 cone-NAT hosts, a fresh lab per
 * system, the order alternating per run (odd runs Nebula first). Per system:
 *   t_full  t0 = all 8 daemons spawned at once → every ordered pair (56) has answered a ping
 *           over the overlay (one `fping -l -p P` per host, see measure.ts: late by ≤ P ms;
 *           P = COMPARE_PING_MS, default 100 — 250 until 2026-11-30, when t_full came near it)
 *   idle    5 s after t_full, a 20 s window: bytes crossing the internet bridge (KiB/s per
 *           node), VmRSS at its end, CPU (utime+stime) over it in % of one core — for the
 *           daemon (wgmesh: the node process; Nebula: nebula) and, for wgmesh, its wireguard-go
 *           separately (Nebula has its data plane inside). "children" = CPU of the short-lived
 *           commands (wg, ip) the wgmesh agent ran and reaped in the window.
 * Wgmesh: prepareIdentities (pre-made keys, known overlay IPs), pub1 `up`, the others
 * `join --peer <pub1>`, default timers. Nebula: see nebula.ts. Usage: run.sh [RUNS] compare
 */
import { execFileSync } from 'node:child_process'
import { Lab, type LabProcess } from '../../test/lab/lab.js'
import { WgmeshLab, BUNDLE } from '../../test/netns/wgmesh-lab.js'
import { prepareIdentities } from './identities.js'
import { NebulaMesh } from './nebula.js'
import { idleWindow, median, nsPids, PAIR_PING_MS, pingAll, sleep, stat, type Idle } from './measure.js'

const RUNS = Number(process.argv[2] ?? 3)
// idle is measured from SETTLE_MS after the full mesh (COMPARE_SETTLE_MS: e.g. 30000 for the
// steady state, once start-up work — the LAN beacons' fast rounds, the first NAT probes — is over)
const SETTLE_MS = Number(process.env.COMPARE_SETTLE_MS ?? 5000)
const WINDOW_MS = 20_000
const TIMEOUT_S = 90
type System = 'nebula' | 'wgmesh'

interface Result {
  tFullMs: number, pairs: number, missing: string[], kibPerNode: number, pktPerNode: number,
  rssMiB: number, cpuPct: number, childCpuPct: number, wgRssMiB: number, wgCpuPct: number
}

interface Started { ip: Map<string, string>, daemons: Map<string, LabProcess>, cleanup: () => void }

function startWgmesh (lab: Lab, hosts: string[]): { start: () => Started } {
  const mesh = new WgmeshLab(lab)
  const { keyFile, ip } = prepareIdentities(mesh, hosts)
  const seed = lab.host(hosts[0]!).ip
  return {
    start: () => {
      const daemons = new Map<string, LabProcess>()
      for (const h of hosts) {
        const n = mesh.node(h)
        daemons.set(h, lab.spawn(`agent-${h}`, h, [process.execPath, BUNDLE, h === hosts[0] ? 'up' : 'join', '--state-dir', n.stateDir,
          '--interface', n.iface, '--name', h, '--mesh-key-file', keyFile, '--log-format', 'json', ...(h === hosts[0] ? [] : ['--peer', seed])]))
      }
      return { ip, daemons, cleanup: () => mesh.cleanup() }
    }
  }
}

function startNebula (lab: Lab, hosts: string[]): { start: () => Started } {
  const neb = new NebulaMesh(lab, hosts)
  return { start: () => { neb.start(); return { ip: neb.ip, daemons: neb.procs, cleanup: () => neb.cleanup() } } }
}

async function oneRun (system: System, run: number): Promise<Result> {
  const lab = await Lab.up({ public: 4, natted: 4, nat: 'cone' })
  let started: Started | undefined
  try {
    const hosts = lab.hosts.map(h => h.name)
    const prepared = system === 'wgmesh' ? startWgmesh(lab, hosts) : startNebula(lab, hosts)
    const t0 = Date.now()
    started = prepared.start()
    const all = await pingAll(lab, hosts, started.ip, t0, { method: 'fping', fpingPeriodMs: PAIR_PING_MS, timeoutS: TIMEOUT_S, labelPrefix: `ping-${system}` })
    for (const [h, p] of started.daemons) if (p.exited) throw new Error(`${system} on ${h} exited:\n${p.log().slice(-2000)}`)

    await sleep(SETTLE_MS)
    const pids = new Map<string, number>()
    for (const [h, p] of started.daemons) {
      pids.set(`daemon:${h}`, p.pid)
      if (system === 'wgmesh') for (const pid of await nsPids(lab, h, 'wireguard-go')) pids.set(`wg:${h}:${pid}`, pid)
    }
    const idle: Idle = await idleWindow(lab, pids, WINDOW_MS)
    const r: Result = {
      tFullMs: all.fullMs,
      pairs: all.times.length,
      missing: all.missing,
      kibPerNode: idle.bytesPerS / 1024 / hosts.length,
      pktPerNode: idle.packetsPerS / hosts.length,
      rssMiB: stat(idle, 'daemon:', 'rssMiB').median,
      cpuPct: stat(idle, 'daemon:', 'cpuPct').median,
      childCpuPct: stat(idle, 'daemon:', 'childCpuPct').median,
      wgRssMiB: stat(idle, 'wg:', 'rssMiB').median,
      wgCpuPct: stat(idle, 'wg:', 'cpuPct').median
    }
    const f = (x: number, d = 1): string => Number.isFinite(x) ? x.toFixed(d) : '-'
    console.log(`run ${run} ${system.padEnd(6)}: t_full ${f(r.tFullMs, 0)} ms (${r.pairs}/56 pairs${r.missing.length > 0 ? `; missing ${r.missing.join(' ')}` : ''}), ` +
      `idle ${f(r.kibPerNode, 2)} KiB/s ${f(r.pktPerNode)} pkt/s per node, daemon RSS ${f(r.rssMiB)} MiB CPU ${f(r.cpuPct, 2)}%` +
      (system === 'wgmesh' ? ` (+children ${f(r.childCpuPct, 2)}%), wireguard-go RSS ${f(r.wgRssMiB)} MiB CPU ${f(r.wgCpuPct, 2)}%` : ''))
    return r
  } finally {
    await lab.down()
    started?.cleanup()
  }
}

async function main (): Promise<void> {
  Lab.requireRoot()
  const res: Record<System, Result[]> = { nebula: [], wgmesh: [] }
  for (let i = 1; i <= RUNS; i++) {
    const order: System[] = i % 2 === 1 ? ['nebula', 'wgmesh'] : ['wgmesh', 'nebula']
    for (const s of order) res[s].push(await oneRun(s, i))
  }
  const med = (s: System, k: keyof Result): number => median(res[s].map(r => r[k] as number))
  const rows: Array<[string, number, number]> = [
    ['t_full: 8 spawned → 56 pairs ping (ms)', med('nebula', 'tFullMs'), med('wgmesh', 'tFullMs')],
    ['idle traffic per node (KiB/s)', med('nebula', 'kibPerNode'), med('wgmesh', 'kibPerNode')],
    ['idle packets per node (pkt/s)', med('nebula', 'pktPerNode'), med('wgmesh', 'pktPerNode')],
    ['RSS per daemon (MiB)', med('nebula', 'rssMiB'), med('wgmesh', 'rssMiB')],
    ['RSS daemon + wireguard-go (MiB)', med('nebula', 'rssMiB'), median(res.wgmesh.map(r => r.rssMiB + r.wgRssMiB))],
    ['idle CPU per daemon (% of a core)', med('nebula', 'cpuPct'), med('wgmesh', 'cpuPct')],
    ['idle CPU daemon + children + wireguard-go (%)', med('nebula', 'cpuPct'), median(res.wgmesh.map(r => r.cpuPct + r.childCpuPct + r.wgCpuPct))]
  ]
  const f = (x: number): string => !Number.isFinite(x) ? '-' : x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2)
  console.log('')
  const nebVersion = execFileSync('nebula', ['-version'], { encoding: 'utf8' }).replace(/^Version:\s*/, '').trim()
  console.log(`wgmesh vs Nebula ${nebVersion}: 4 public + 4 cone-NAT hosts, netns lab, ${RUNS} run(s) each, median (per-node values: median over the 8 nodes); pings every ${PAIR_PING_MS} ms per pair`)
  console.log(`| measure | Nebula | wgmesh | wgmesh/Nebula |\n| --- | ---: | ---: | ---: |`)
  for (const [name, n, w] of rows) console.log(`| ${name} | ${f(n)} | ${f(w)} | ${f(w / n)} |`)
  console.log(`wgmesh's wireguard-go alone: RSS ${f(med('wgmesh', 'wgRssMiB'))} MiB, idle CPU ${f(med('wgmesh', 'wgCpuPct'))}%; agent's children CPU ${f(med('wgmesh', 'childCpuPct'))}%`)
  const incomplete = [...res.nebula, ...res.wgmesh].filter(r => r.missing.length > 0).length
  if (incomplete > 0) console.log(`WARNING: ${incomplete} run(s) did not reach all 56 pairs within ${TIMEOUT_S} s (t_full '-' there)`)
}

main().catch((err: Error) => { console.error(err.stack ?? err.message); process.exit(1) })
