/**
 * Measurement helpers shared by the benchmarks (mesh, nat, compare, large):
 *   - pingLoop / pingAll: overlay reachability over time, from inside lab hosts
 *   - bridgeBytes: underlay bytes crossing the lab's internet bridge (`table bridge labacct`)
 *   - procSample / idleWindow: RSS (VmRSS) and CPU (utime+stime) of daemons from /proc
 */
import { readFileSync } from 'node:fs'
import { spawnSync } from 'node:child_process'
import type { Lab, LabProcess } from '../../test/lab/lab.js'

export const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

export const median = (xs: number[]): number => {
  const s = xs.filter(x => Number.isFinite(x)).sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length === 0 ? NaN : s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

/**
 * How a host probes its targets (every method prints "IP EPOCH_MS" once per target, at the
 * first answer, and stops probing that target):
 *   ping     one target after the other, `ping -c1 -W1` (a silent target costs 1 s per pass)
 *   parallel one `ping` loop per target (every 250 ms, -W 0.5), all in parallel
 *   fping    one long-lived `fping -l -D -p P` (every target every P ms, default 250; no
 *            process per probe): the time is fping's own receive timestamp, so a pair is late
 *            by at most P; the harness stops it once every target has answered
 */
export type PingMethod = 'ping' | 'parallel' | 'fping'

/**
 * How often compare and timeline ping each pair until it answers (COMPARE_PING_MS, default
 * 100; 250 until 2026-11-30): a pair's time is late by up to this.
 */
export const PAIR_PING_MS = Number(process.env.COMPARE_PING_MS ?? 100)

export interface PingLoopOptions { method?: PingMethod, timeoutS?: number, fpingPeriodMs?: number }

export interface PingLoop { host: string, proc: LabProcess, done: Promise<Map<string, number>> }

function pingScript (targets: string[], o: Required<PingLoopOptions> & { method: 'ping' | 'parallel' }): string {
  const list = targets.join(' ')
  const stop = `end=$(( $(date +%s) + ${o.timeoutS} ))`
  switch (o.method) {
    case 'ping':
      return `${stop}; pending="${list}"; while [ -n "$pending" ] && [ $(date +%s) -lt $end ]; do next=""; for ip in $pending; do if ping -n -c 1 -W 1 -q $ip >/dev/null 2>&1; then echo "$ip $(date +%s%3N)"; else next="$next $ip"; fi; done; pending="$next"; sleep 0.02; done`
    case 'parallel':
      return `${stop}; for ip in ${list}; do ( until ping -n -c 1 -W 0.5 -q $ip >/dev/null 2>&1; do [ $(date +%s) -ge $end ] && exit 0; sleep 0.25; done; echo "$ip $(date +%s%3N)" ) & done; wait`
  }
}

/** Probe `targets` from `host` until each has answered once (or timeoutS); `done` maps each
 *  target that answered to the ms since `t0` (a Date.now() value) of its first answer. */
export function pingLoop (lab: Lab, host: string, targets: string[], t0: number, label: string, opts: PingLoopOptions = {}): PingLoop {
  const o: Required<PingLoopOptions> = { method: 'ping', timeoutS: 60, fpingPeriodMs: 250, ...opts }
  if (o.method === 'fping') return fpingLoop(lab, host, targets, t0, label, o)
  const proc = lab.spawn(label, host, ['bash', '-c', pingScript(targets, { ...o, method: o.method })])
  const done = proc.wait().then(() => {
    const out = new Map<string, number>()
    for (const line of proc.log().trim().split('\n')) {
      const [ip, ms] = line.split(' ')
      if (ip !== undefined && ms !== undefined && Number.isFinite(Number(ms))) out.set(ip, Number(ms) - t0)
    }
    return out
  })
  return { host, proc, done }
}

const FPING_REPLY = /^\[(\d+\.\d+)\] (\S+)\s+: \[\d+\], \d+ bytes/

function fpingLoop (lab: Lab, host: string, targets: string[], t0: number, label: string, o: Required<PingLoopOptions>): PingLoop {
  // fping flushes every line, so replies can be read from its log while it runs
  const proc = lab.spawn(label, host, ['fping', '-l', '-D', '-r', '0', '-i', '2', '-p', String(o.fpingPeriodMs), ...targets])
  const seen = (): Map<string, number> => {
    const out = new Map<string, number>()
    for (const line of proc.log().split('\n')) {
      const m = FPING_REPLY.exec(line)
      if (m !== null && !out.has(m[2]!)) out.set(m[2]!, Math.round(Number(m[1]) * 1000) - t0)
    }
    return out
  }
  const done = (async () => {
    const end = Date.now() + o.timeoutS * 1000
    while (!proc.exited && Date.now() < end && seen().size < targets.length) await sleep(200)
    await proc.kill('SIGTERM')
    return seen()
  })()
  return { host, proc, done }
}

export interface AllPairs {
  /** ms since t0 of each ordered pair's first answer */
  times: number[]
  /** ordered pairs (src->dst) that never answered */
  missing: string[]
  /** each answered ordered pair with its time */
  pairs: Array<{ pair: string, ms: number }>
  /** max of times: every pair has answered (NaN if any is missing) */
  fullMs: number
}

/** One ping loop per host towards every other host's overlay address (`ip`), started at once. */
export async function pingAll (lab: Lab, hosts: string[], ip: Map<string, string>, t0: number, opts: PingLoopOptions & { labelPrefix?: string } = {}): Promise<AllPairs> {
  const loops = hosts.map(h => pingLoop(lab, h, hosts.filter(x => x !== h).map(x => ip.get(x)!), t0, `${opts.labelPrefix ?? 'ping'}-${h}`, opts))
  const results = await Promise.all(loops.map(async l => ({ host: l.host, got: await l.done })))
  const times: number[] = []
  const missing: string[] = []
  const pairs: Array<{ pair: string, ms: number }> = []
  for (const { host, got } of results) {
    for (const x of hosts) {
      if (x === host) continue
      const ms = got.get(ip.get(x)!)
      if (ms === undefined) missing.push(`${host}->${x}`)
      else { times.push(ms); pairs.push({ pair: `${host}->${x}`, ms }) }
    }
  }
  return { times, missing, pairs, fullMs: missing.length === 0 ? Math.max(...times) : NaN }
}

/** bytes and packets that crossed the internet bridge during `windowMs` (counters zeroed first) */
export async function bridgeBytes (lab: Lab, windowMs: number): Promise<{ bytes: number, packets: number, ms: number }> {
  await lab.zeroFlows()
  const t = Date.now()
  await sleep(windowMs)
  const flows = await lab.flows()
  const ms = Date.now() - t
  return { bytes: flows.reduce((a, f) => a + f.bytes, 0), packets: flows.reduce((a, f) => a + f.packets, 0), ms }
}

let clkTck: number | undefined
function ticksPerS (): number {
  clkTck ??= Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100
  return clkTck
}

export interface ProcSample { pid: number, rssKiB: number, ticks: number, childTicks: number }

/** VmRSS and CPU ticks (utime+stime, and cutime+cstime of reaped children) of a PID */
export function procSample (pid: number): ProcSample {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ') // f[0] is field 3 (state)
  return {
    pid,
    rssKiB: Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN),
    ticks: Number(f[11]) + Number(f[12]), // fields 14, 15
    childTicks: Number(f[13]) + Number(f[14]) // fields 16, 17
  }
}

export interface IdleProc { rssMiB: number, cpuPct: number, childCpuPct: number }
export interface Idle { bytesPerS: number, packetsPerS: number, procs: Map<string, IdleProc> }

/**
 * One idle window: zero the bridge counters and sample every PID, wait windowMs, read the
 * counters and sample again. CPU is in % of one core over the window, RSS is at its end.
 * `pids` keys are free-form (e.g. 'agent:pub1', 'wg:pub1').
 */
export async function idleWindow (lab: Lab, pids: Map<string, number>, windowMs: number): Promise<Idle> {
  const before = new Map([...pids].map(([k, pid]) => [k, procSample(pid)]))
  const t = Date.now()
  const bytes = await bridgeBytes(lab, windowMs)
  const s = (Date.now() - t) / 1000
  const procs = new Map<string, IdleProc>()
  for (const [k, pid] of pids) {
    const a = before.get(k)!
    const b = procSample(pid)
    procs.set(k, {
      rssMiB: b.rssKiB / 1024,
      cpuPct: 100 * (b.ticks - a.ticks) / ticksPerS() / s,
      childCpuPct: 100 * (b.childTicks - a.childTicks) / ticksPerS() / s
    })
  }
  return { bytesPerS: bytes.bytes / (bytes.ms / 1000), packetsPerS: bytes.packets / (bytes.ms / 1000), procs }
}

/** PIDs of the processes in host's namespace whose argv0 (basename) is `name`, e.g. the
 *  wireguard-go daemon an agent forked (found by the lab's namespace process scan) */
export async function nsPids (lab: Lab, host: string, name: string): Promise<number[]> {
  return (await lab.processes(host)).filter(p => p.argv[0]!.split('/').pop() === name).map(p => p.pid)
}

/** median / max of a field over the procs whose key starts with `prefix` */
export function stat (idle: Idle, prefix: string, field: keyof IdleProc): { median: number, max: number } {
  const xs = [...idle.procs].filter(([k]) => k.startsWith(prefix)).map(([, v]) => v[field])
  return { median: median(xs), max: xs.length === 0 ? NaN : Math.max(...xs) }
}
