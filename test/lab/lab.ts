// TypeScript driver of the wgmesh netns lab (test/lab/topo.sh is the single source of truth
// for the topology, NAT rules, state files and cleanup; this file wraps it for node:test).
//
//   Lab.requireRoot()                      // throws (test FAILS) if the lab cannot run here
//   const lab = await Lab.up({ public: 3, natted: 2, nat: 'cone' })
//   try { await lab.exec('pub1', ['ping', '-c1', lab.host('pub2').ip]) } finally { await lab.down() }
//
// Service LAN (gateway-failover / exit-node tests): Lab.up({ ..., serviceLan: { hosts: ['pub1', 'pub2'] } })
// puts host 'svc' (203.0.113.238, no default route) on a bridge 203.0.113.224/28 that the listed
// hosts reach through a second interface svc0 (lab.host('pub1').svcIp); lab.svcCounters() tells
// which gateway carried traffic to/from it.
//
// IPv6 underlay: Lab.up({ public: 3, natted: 0, underlay: 'ipv6' }) gives hosts with ONLY IPv6
// on eth0 (pubI = 2001:db8:1::I/64; lab.host('pub1').ip is that address); 'dual' gives the
// public hosts both (host.ip IPv4, host.ip6 IPv6). lab.familyCounters() counts the frames the
// internet bridge switched per family (ip4 / ip6 / arp).
//
// Safety: namespaces get a random per-run prefix; every process started through spawn() is
// recorded (PID, netns, argv0, start time) in the run's state dir and only ever signalled by
// that PID after an identity check; down() runs on normal exit, SIGINT and SIGTERM too, and
// `topo.sh gc` (run by every Lab.up) takes down labs whose owning process died.
import { spawn as cpSpawn, spawnSync, type ChildProcess } from 'node:child_process'
import { appendFileSync, existsSync, mkdirSync, openSync, closeSync, readFileSync, rmSync, statSync, writeFileSync, accessSync, constants as fsc } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { tmpdir } from 'node:os'
import { delimiter, dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export type NatType = 'cone' | 'symmetric'
/** the internet's families (`LabOptions.underlay`) */
export type Underlay = 'ipv4' | 'ipv6' | 'dual'
/** 'svc': the service-LAN host (`LabOptions.serviceLan`), not part of `Lab.hosts` */
export type HostRole = 'pub' | 'nat' | 'svc'

export interface LabOptions {
  /** number of hosts with a public address (pub1..N) */
  public: number
  /** number of hosts behind their own NAT router (nat1..N, routers r-nat1..N) */
  natted: number
  /** NAT type of every router, or per router (nat1, nat2, ...; the last entry repeats) */
  nat?: NatType | NatType[]
  /** extra hosts on a router's LAN: { 2: 1 } puts nat2-b beside nat2 (max 12 per LAN) */
  sharedLan?: Record<number, number>
  /** a "service LAN" 203.0.113.224/28 behind these hosts (1..13 of pubI, natK, natK-b; in
   *  this order they get svc0 = .225, .226, ...), with host 'svc' (.238, no default route) on
   *  it. Needs natted <= 46 (r-nat47's LAN would be the same /28). See `Lab.serviceLan`. */
  serviceLan?: { hosts: string[] }
  /** the underlay's families (topo.sh up --underlay): 'ipv4' (default, the lab as it always
   *  was), 'ipv6' (public hosts with ONLY IPv6 on eth0, 2001:db8:1::I/64, no IPv4 address or
   *  route on it; natted must be 0), 'dual' (public hosts with both; NATted hosts IPv4 only) */
  underlay?: Underlay
  /** namespace-name prefix; default env LAB_PREFIX or wgm<4 hex>- */
  prefix?: string
  /** state dir; default env LAB_STATE or test/lab/state/runs/<prefix> */
  stateDir?: string
  /** directory for spawn() logs; default $TMPDIR/wgmesh-lab-<prefix> */
  logDir?: string
}

export interface LabHost {
  /** logical name: pub1, nat2, nat2-b */
  name: string
  role: HostRole
  /** real namespace name (prefixed) */
  ns: string
  /** underlay address of eth0 (IPv4; the IPv6 one on an IPv6-only underlay) */
  ip: string
  /** IPv6 underlay address of eth0 (underlay 'ipv6' or 'dual', public hosts) */
  ip6?: string
  /** address the internet sees: own ip for pub hosts, the router's WAN address for nat hosts;
   *  '' for 'svc' (the internet cannot reach it at all) */
  publicIp: string
  /** r-natK for nat hosts */
  router?: string
  natType?: NatType
  /** address of the host's second interface svc0 on the service LAN (gateways only) */
  svcIp?: string
}

/** the service LAN of `LabOptions.serviceLan` (topo.sh up --service-lan) */
export interface ServiceLan {
  /** '203.0.113.224/28' */
  subnet: string
  /** address of host 'svc' (its eth0): '203.0.113.238' */
  svcIp: string
  /** host 'svc': usable with exec/run/spawn/ping/processes like any host. Its main routing
   *  table holds only the /28 (no default route, no overlay guard), IPv6 is off, forwarding off */
  svc: LabHost
  /** namespace holding the bridge 'svc' (no address; drops IPv6; also reachable as 'svc-br'
   *  in exec/run, e.g. for tcpdump) */
  bridgeNs: string
  /** the hosts with an svc0 interface on it, in the order given (svc0 = .225, .226, ...).
   *  Forwarding is off in all of them: the agent under test turns it on. */
  gateways: Array<{ host: string, ip: string }>
}

/** counters of a gateway's svc0 (/sys/class/net/svc0/statistics). ARP broadcasts on the
 *  service LAN (e.g. a gateway resolving svc's MAC) are counted on every gateway's svc0:
 *  compare deltas taken after the neighbour caches are warm. */
export interface SvcCounters { ip: string, rxPackets: number, txPackets: number, rxBytes: number, txBytes: number }

export interface LabRouter {
  name: string
  ns: string
  lanIp: string
  wanIp: string
  natType: NatType
}

export interface ExecResult { code: number, signal: NodeJS.Signals | null, stdout: string, stderr: string }
export interface ExecOptions { input?: string | Buffer, timeoutMs?: number, env?: Record<string, string> }

export interface SpawnOptions {
  /** stdout+stderr go here (default <logDir>/<label>.log) */
  logFile?: string
  /** added to the inherited environment */
  env?: Record<string, string>
}

export interface ExitInfo { code: number | null, signal: NodeJS.Signals | null }

export interface LabProcess {
  readonly label: string
  readonly host: string
  readonly pid: number
  readonly logFile: string
  /** true once the process has exited */
  readonly exited: boolean
  /** resolves when the process exits */
  wait(): Promise<ExitInfo>
  /** signal the recorded PID (after checking it is still our process). For SIGTERM (default)
   *  waits up to 3 s and escalates to SIGKILL; resolves when it has exited. Other signals are
   *  just delivered. */
  kill(signal?: NodeJS.Signals): Promise<void>
  /** current content of the log file */
  log(): string
}

/** a process found inside a lab namespace (`Lab.processes`), recorded by the lab or not */
export interface NsProcess { pid: number, argv: string[] }

export interface PingResult { ok: boolean, transmitted: number, received: number, code: number, output: string }

export interface Flow { src: string, srcHost: string, dst: string, dstHost: string, packets: number, bytes: number }

/** frames of one family the internet bridge switched (`topo.sh families`) */
export interface FamilyCount { packets: number, bytes: number }

export interface WgOptions {
  /** interface name (<=15 chars, unique on the machine); default wgl<6 hex> */
  ifname?: string
  listenPort?: number
  /** e.g. ['100.64.0.1/10', 'fd00:1::1/48'] */
  addresses?: string[]
}

export interface WgPeer {
  publicKey: string
  allowedIps: string[]
  endpoint?: string
  persistentKeepalive?: number
}

export interface WgInterface {
  readonly host: string
  readonly ifname: string
  readonly publicKey: string
  readonly listenPort: number | undefined
  readonly proc: LabProcess
  setPeer(peer: WgPeer): Promise<void>
  /** `wg show <if> dump` */
  dump(): Promise<string>
}

/** a real UPnP IGD v2 + NAT-PMP gateway (Debian's miniupnpd) running in a router, see
 *  `Lab.enableUpnp` and `topo.sh upnp` */
export interface UpnpGateway {
  /** r-natK */
  router: string
  ns: string
  /** the router's LAN address: NAT-PMP gateway (port 5351) and UPnP HTTP server */
  lanIp: string
  /** the router's WAN address (what GetExternalIPAddress / NAT-PMP report) */
  wanIp: string
  /** e.g. 192.0.2.0/28: miniupnpd only maps 1024-65535 for this subnet (secure_mode) */
  lanSubnet: string
  httpPort: number
  /** http://<lanIp>:<httpPort>/rootDesc.xml (usable as `gateway` of createPortMapper().map) */
  descUrl: string
  /** miniupnpd's PID (recorded; killed by PID by disableUpnp()/down()) */
  pid: number
  /** PID of the lab STUN responder miniupnpd asks for its "public" address */
  stunPid: number
  logFile: string
  configFile: string
  /** current content of miniupnpd's log */
  log(): string
}

const LAB_DIR = dirname(fileURLToPath(import.meta.url))
const TOPO = join(LAB_DIR, 'topo.sh')
const REQUIRED_TOOLS = ['ip', 'nft', 'sysctl', 'conntrack', 'wireguard-go', 'wg', 'ping', 'bash']

function which (cmd: string): string | undefined {
  for (const d of (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(delimiter)) {
    const p = join(d, cmd)
    try { accessSync(p, fsc.X_OK); return p } catch {}
  }
  return undefined
}

function procStartTime (pid: number): string | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return s.slice(s.lastIndexOf(')') + 2).split(' ')[19]
  } catch { return undefined }
}

function nsInode (path: string): number | undefined {
  try { return statSync(path).ino } catch { return undefined }
}

interface PidRecord { pid: number, ns: string, argv0: string, label: string, start: string }

/** same check as _pid_is_ours in lib/common.sh */
function pidIsOurs (r: PidRecord): boolean {
  if (!Number.isInteger(r.pid) || r.pid <= 1) return false
  if (r.start !== '-' && procStartTime(r.pid) !== r.start) return false
  let cl: string[]
  try { cl = readFileSync(`/proc/${r.pid}/cmdline`, 'utf8').split('\0') } catch { return false }
  if (cl.length === 0 || cl[0] === '') return false // zombie
  if (cl[0] === 'ip' && cl[1] === 'netns' && cl[2] === 'exec' && cl[3] === r.ns && cl[4] === r.argv0) return true
  if (cl[0] !== r.argv0) return false
  const want = nsInode(`/run/netns/${r.ns}`)
  let have: number | undefined
  try { have = statSync(`/proc/${r.pid}/ns/net`).ino } catch {}
  return want !== undefined && want === have
}

const activeLabs = new Set<Lab>()
let handlersInstalled = false
function installExitHandlers (): void {
  if (handlersInstalled) return
  handlersInstalled = true
  process.on('exit', () => { for (const lab of [...activeLabs]) lab.downSync() })
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      for (const lab of [...activeLabs]) lab.downSync()
      process.exit(128 + (sig === 'SIGINT' ? 2 : sig === 'SIGTERM' ? 15 : 1))
    })
  }
}

function runAsync (cmd: string, args: string[], opts: ExecOptions = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = cpSpawn(cmd, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: opts.env !== undefined ? { ...process.env, ...opts.env } : process.env
    })
    const out: Buffer[] = []
    const err: Buffer[] = []
    child.stdout.on('data', (b: Buffer) => out.push(b))
    child.stderr.on('data', (b: Buffer) => err.push(b))
    let timer: NodeJS.Timeout | undefined
    if (opts.timeoutMs !== undefined) timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs)
    child.on('error', (e) => { if (timer) clearTimeout(timer); reject(e) })
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer)
      resolve({ code: code ?? -1, signal, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() })
    })
    child.stdin.on('error', () => {})
    child.stdin.end(opts.input)
  })
}

export class Lab {
  readonly prefix: string
  readonly stateDir: string
  readonly logDir: string
  readonly internetNs: string
  /** the hosts an agent may run on (pub*, nat*); the service-LAN host 'svc' is not among them
   *  (see `serviceLan`), but `host('svc')`, exec, spawn, ping... accept it */
  readonly hosts: LabHost[]
  readonly routers: LabRouter[]
  /** set when the lab was brought up with `serviceLan` */
  readonly serviceLan: ServiceLan | undefined
  /** the underlay's families (`LabOptions.underlay`) */
  readonly underlay: Underlay
  private readonly procs = new Set<LabProcessImpl>()
  private isDown = false

  private constructor (prefix: string, stateDir: string, logDir: string, internetNs: string, hosts: LabHost[], routers: LabRouter[],
    serviceLan?: ServiceLan, underlay: Underlay = 'ipv4') {
    this.prefix = prefix
    this.stateDir = stateDir
    this.logDir = logDir
    this.internetNs = internetNs
    this.hosts = hosts
    this.routers = routers
    this.serviceLan = serviceLan
    this.underlay = underlay
  }

  /** Throws a clear error when the lab cannot run here (not root, tools missing). Tests
   *  should call it and FAIL, never skip. */
  static requireRoot (): void {
    const problems: string[] = []
    if (process.platform !== 'linux') problems.push(`platform is ${process.platform}, the lab needs Linux network namespaces`)
    if (typeof process.getuid !== 'function' || process.getuid() !== 0) problems.push('not running as root (uid 0)')
    const missing = REQUIRED_TOOLS.filter(t => which(t) === undefined)
    if (missing.length > 0) problems.push(`missing tools: ${missing.join(', ')} (apt-get install iproute2 nftables procps conntrack wireguard-go wireguard-tools iputils-ping)`)
    if (!existsSync('/dev/net/tun')) problems.push('/dev/net/tun is missing (wireguard-go needs TUN)')
    if (problems.length > 0) throw new Error(`wgmesh netns lab cannot run: ${problems.join('; ')}`)
  }

  static async up (opts: LabOptions): Promise<Lab> {
    Lab.requireRoot()
    if (!Number.isInteger(opts.public) || !Number.isInteger(opts.natted) || opts.public < 0 || opts.natted < 0) {
      throw new Error('Lab.up: public/natted must be non-negative integers')
    }
    // labs whose test process died (SIGKILL, OOM) are taken down first
    await runAsync('bash', [TOPO, 'gc'])
    const prefix = opts.prefix ?? process.env.LAB_PREFIX ?? `wgm${randomBytes(2).toString('hex')}-`
    const stateDir = opts.stateDir ?? process.env.LAB_STATE ?? join(LAB_DIR, 'state', 'runs', prefix.replace(/-$/, ''))
    const logDir = opts.logDir ?? join(tmpdir(), `wgmesh-lab-${prefix.replace(/-$/, '')}`)
    mkdirSync(stateDir, { recursive: true })
    mkdirSync(logDir, { recursive: true })
    writeFileSync(join(stateDir, 'owner'), `${process.pid} ${procStartTime(process.pid) ?? '-'}\n`)
    const nat = Array.isArray(opts.nat) ? opts.nat.join(',') : (opts.nat ?? 'cone')
    const args = [TOPO, 'up', String(opts.public), String(opts.natted), nat]
    const shared = Object.entries(opts.sharedLan ?? {}).map(([k, c]) => `${k}:${c}`).join(',')
    if (shared !== '') args.push('--shared-lan', shared)
    if (opts.serviceLan !== undefined) {
      const gws = opts.serviceLan.hosts
      if (!Array.isArray(gws) || gws.length === 0 || !gws.every(h => typeof h === 'string' && /^[A-Za-z0-9-]+$/.test(h))) {
        throw new Error(`Lab.up: serviceLan.hosts must be a non-empty list of host names, got ${JSON.stringify(gws)}`)
      }
      args.push('--service-lan', gws.join(','))
    }
    if (opts.underlay !== undefined && opts.underlay !== 'ipv4') {
      if (opts.underlay !== 'ipv6' && opts.underlay !== 'dual') throw new Error(`Lab.up: underlay must be 'ipv4', 'ipv6' or 'dual', got ${JSON.stringify(opts.underlay)}`)
      args.push('--underlay', opts.underlay)
    }
    const env = { LAB_STATE: stateDir, LAB_PREFIX: prefix }
    // register cleanup before anything exists
    const placeholder = new Lab(prefix, stateDir, logDir, `${prefix}internet`, [], [])
    activeLabs.add(placeholder)
    installExitHandlers()
    const r = await runAsync('bash', args, { env })
    activeLabs.delete(placeholder)
    if (r.code !== 0) {
      await runAsync('bash', [TOPO, 'down'], { env })
      throw new Error(`topo.sh up failed (code ${r.code}):\n${r.stderr}${r.stdout}`)
    }
    const lab = Lab.load(stateDir, logDir)
    activeLabs.add(lab)
    return lab
  }

  /** attach to a lab brought up by `topo.sh up` (state dir); down() will take it down */
  static attach (stateDir: string, logDir = join(tmpdir(), 'wgmesh-lab-attached')): Lab {
    Lab.requireRoot()
    mkdirSync(logDir, { recursive: true })
    const lab = Lab.load(stateDir, logDir)
    activeLabs.add(lab)
    installExitHandlers()
    return lab
  }

  private static load (stateDir: string, logDir: string): Lab {
    const env = Object.fromEntries(readFileSync(join(stateDir, 'topo.env'), 'utf8').split('\n')
      .map(l => /^([A-Z_]+)="?(.*?)"?$/.exec(l)).filter((m): m is RegExpExecArray => m !== null)
      .map(m => [m[1] as string, m[2] as string]))
    const hosts: LabHost[] = []
    const routers: LabRouter[] = []
    let svc: LabHost | undefined
    const lines = readFileSync(join(stateDir, 'hosts.tsv'), 'utf8').trim().split('\n').slice(1)
    for (const line of lines) {
      const [name = '', role = '', ns = '', addr = '', pub = '', router = '', natType = '', svcIp = '-', ip6 = '-'] = line.split('\t')
      if (role === 'router') routers.push({ name, ns, lanIp: addr, wanIp: pub, natType: natType as NatType })
      else if (role === 'svc') svc = { name, role, ns, ip: addr, publicIp: '' }
      else {
        const h: LabHost = { name, role: role as HostRole, ns, ip: addr, publicIp: pub }
        if (role === 'nat') { h.router = router; h.natType = natType as NatType }
        if (svcIp !== '-' && svcIp !== '') h.svcIp = svcIp
        if (ip6 !== '-' && ip6 !== '') h.ip6 = ip6
        hosts.push(h)
      }
    }
    let serviceLan: ServiceLan | undefined
    if (env.LAB_SVC_NS !== undefined) {
      if (svc === undefined) throw new Error(`${stateDir}: topo.env has a service LAN but hosts.tsv no 'svc' host`)
      const gateways = (env.LAB_SVC_GATEWAYS ?? '').split(' ').filter(g => g !== '').map(g => {
        const ip = hosts.find(h => h.name === g)?.svcIp
        if (ip === undefined) throw new Error(`${stateDir}: service-LAN gateway ${g} has no svc0 address in hosts.tsv`)
        return { host: g, ip }
      })
      serviceLan = { subnet: env.LAB_SVC_SUBNET ?? '', svcIp: env.LAB_SVC_IP ?? '', svc, bridgeNs: env.LAB_SVC_BR_NS ?? '', gateways }
    }
    return new Lab(env.LAB_PREFIX ?? '', stateDir, logDir, env.LAB_INET_NS ?? '', hosts, routers, serviceLan, (env.LAB_UNDERLAY ?? 'ipv4') as Underlay)
  }

  private get env (): Record<string, string> { return { LAB_STATE: this.stateDir, LAB_PREFIX: this.prefix } }

  /** a host by name: pub1, nat2-b, or 'svc' (service LAN) */
  host (name: string): LabHost {
    const h = this.hosts.find(x => x.name === name) ?? (name === 'svc' ? this.serviceLan?.svc : undefined)
    if (h === undefined) throw new Error(`no host '${name}' in this lab (${this.hosts.map(x => x.name).join(', ')}${this.serviceLan !== undefined ? ', svc' : ''})`)
    return h
  }

  /** real namespace of a host (incl. 'svc'), router (r-natK), 'internet' or 'svc-br' */
  ns (name: string): string {
    if (name === 'internet') return this.internetNs
    if (this.serviceLan !== undefined) {
      if (name === 'svc') return this.serviceLan.svc.ns
      if (name === 'svc-br') return this.serviceLan.bridgeNs
    }
    const h = this.hosts.find(x => x.name === name) ?? this.routers.find(x => x.name === name)
    if (h === undefined) throw new Error(`no host/router '${name}' in this lab`)
    return h.ns
  }

  private assertUp (): void {
    if (this.isDown) throw new Error('lab is down')
  }

  /** run argv inside host's namespace and collect its output (never throws on exit code) */
  async exec (host: string, argv: string[], opts: ExecOptions = {}): Promise<ExecResult> {
    this.assertUp()
    if (argv.length === 0) throw new Error('exec: empty argv')
    return await runAsync('ip', ['netns', 'exec', this.ns(host), ...argv], opts)
  }

  /** like exec, but throws unless the exit code is 0; returns stdout */
  async run (host: string, argv: string[], opts: ExecOptions = {}): Promise<string> {
    const r = await this.exec(host, argv, opts)
    if (r.code !== 0) throw new Error(`[${host}] ${argv.join(' ')} -> code ${r.code}${r.signal ? ` (${r.signal})` : ''}: ${r.stderr.trim()}`)
    return r.stdout
  }

  /** start a long-running process inside host's namespace; its PID is recorded in the state dir */
  spawn (label: string, host: string, argv: string[], opts: SpawnOptions = {}): LabProcess {
    this.assertUp()
    if (argv.length === 0) throw new Error('spawn: empty argv')
    if (/[\t\n]/.test(label)) throw new Error('spawn: label must not contain tabs/newlines')
    const ns = this.ns(host)
    const logFile = opts.logFile ?? join(this.logDir, `${label.replace(/[^A-Za-z0-9_.-]/g, '_')}.log`)
    mkdirSync(dirname(logFile), { recursive: true })
    const fd = openSync(logFile, 'a')
    let child: ChildProcess
    try {
      child = cpSpawn('ip', ['netns', 'exec', ns, ...argv], {
        stdio: ['ignore', fd, fd],
        env: { ...process.env, ...opts.env }
      })
    } finally { closeSync(fd) }
    if (child.pid === undefined) throw new Error(`spawn ${argv[0]} in ${host} failed`)
    const rec: PidRecord = { pid: child.pid, ns, argv0: argv[0] as string, label, start: procStartTime(child.pid) ?? '-' }
    appendFileSync(join(this.stateDir, 'pids'), `${rec.pid}\t${rec.ns}\t${rec.argv0}\t${rec.label}\t${rec.start}\n`)
    const p = new LabProcessImpl(label, host, rec, logFile, child, () => this.procs.delete(p))
    this.procs.add(p)
    return p
  }

  /** ping from host; IPv6 destinations (containing ':') use ping -6 */
  async ping (host: string, dst: string, opts: { count?: number, timeoutMs?: number, intervalMs?: number } = {}): Promise<PingResult> {
    const count = opts.count ?? 1
    const deadline = Math.max(1, Math.ceil((opts.timeoutMs ?? 2000) / 1000))
    const argv = ['ping', '-n', '-q', '-c', String(count), '-w', String(deadline), '-i', String((opts.intervalMs ?? 200) / 1000)]
    if (dst.includes(':')) argv.push('-6')
    argv.push(dst)
    const r = await this.exec(host, argv, { timeoutMs: deadline * 1000 + 2000 })
    const m = /(\d+) packets transmitted, (\d+) (?:packets )?received/.exec(r.stdout)
    const transmitted = Number(m?.[1] ?? 0)
    const received = Number(m?.[2] ?? 0)
    return { ok: r.code === 0 && received > 0, transmitted, received, code: r.code, output: r.stdout + r.stderr }
  }

  /** every process inside host's namespace (`ip netns pids`, which compares /proc/PID/ns/net),
   *  with its argv: finds processes the lab did not start itself, e.g. the wireguard-go daemon
   *  an agent forked. For reading /proc only; signal nothing found here (down() handles them). */
  async processes (host: string): Promise<NsProcess[]> {
    this.assertUp()
    const r = await runAsync('ip', ['netns', 'pids', this.ns(host)])
    if (r.code !== 0) throw new Error(`ip netns pids ${this.ns(host)} failed: ${r.stderr.trim()}`)
    const out: NsProcess[] = []
    for (const pid of r.stdout.split('\n').map(Number).filter(p => Number.isInteger(p) && p > 1)) {
      try {
        const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(a => a !== '')
        if (argv.length > 0) out.push({ pid, argv })
      } catch {} // exited meanwhile
    }
    return out
  }

  /** switch the NAT type of host's router (or of router r-natK); flushes its conntrack */
  async setNat (hostOrRouter: string, type: NatType): Promise<void> {
    this.assertUp()
    const r = await runAsync('bash', [TOPO, 'nat', hostOrRouter, type], { env: this.env })
    if (r.code !== 0) throw new Error(`topo.sh nat failed: ${r.stderr}`)
    const router = hostOrRouter.startsWith('r-') ? hostOrRouter : this.host(hostOrRouter).router
    for (const h of this.hosts) if (h.router === router) h.natType = type
    for (const x of this.routers) if (x.name === router) x.natType = type
  }

  /** underlay packet/byte counters per (src, dst) IP, counted on the internet bridge.
   *  NATted hosts appear under their router's WAN address (srcHost/dstHost = r-natK). */
  async flows (opts: { zero?: boolean } = {}): Promise<Flow[]> {
    this.assertUp()
    const r = await runAsync('bash', [TOPO, 'flows'], { env: this.env })
    if (r.code !== 0) throw new Error(`topo.sh flows failed: ${r.stderr}`)
    const flows = r.stdout.trim().split('\n').slice(1).filter(l => l !== '').map(l => {
      const [src = '', srcHost = '', dst = '', dstHost = '', packets = '0', bytes = '0'] = l.split('\t')
      return { src, srcHost, dst, dstHost, packets: Number(packets), bytes: Number(bytes) }
    })
    if (opts.zero === true) await this.zeroFlows()
    return flows
  }

  async zeroFlows (): Promise<void> {
    const r = await runAsync('bash', [TOPO, 'flows', '--zero'], { env: this.env })
    if (r.code !== 0) throw new Error(`topo.sh flows --zero failed: ${r.stderr}`)
  }

  /** frames the internet bridge switched per family since the lab came up (or the last
   *  `zero`, which resets them after reading): an IPv6-only underlay keeps ip4 and arp at 0 */
  async familyCounters (opts: { zero?: boolean } = {}): Promise<Record<'ip4' | 'ip6' | 'arp', FamilyCount>> {
    this.assertUp()
    const r = await runAsync('bash', [TOPO, 'families'], { env: this.env })
    if (r.code !== 0) throw new Error(`topo.sh families failed (code ${r.code}): ${r.stderr}`)
    if (opts.zero === true) {
      const z = await runAsync('bash', [TOPO, 'families', '--zero'], { env: this.env })
      if (z.code !== 0) throw new Error(`topo.sh families --zero failed (code ${z.code}): ${z.stderr}`)
    }
    const out = { ip4: { packets: 0, bytes: 0 }, ip6: { packets: 0, bytes: 0 }, arp: { packets: 0, bytes: 0 } }
    for (const l of r.stdout.trim().split('\n').slice(1).filter(x => x !== '')) {
      const [fam = '', packets = '', bytes = ''] = l.split('\t')
      if (fam === 'ip4' || fam === 'ip6' || fam === 'arp') out[fam] = { packets: Number(packets), bytes: Number(bytes) }
    }
    return out
  }

  /** service LAN: every gateway's svc0 counters (`topo.sh svc-counters`, read from
   *  /sys/class/net/svc0/statistics inside its namespace), keyed by host name: proves which
   *  gateway carried traffic to/from the service LAN. Throws if the lab has no service LAN. */
  async svcCounters (): Promise<Record<string, SvcCounters>> {
    this.assertUp()
    if (this.serviceLan === undefined) throw new Error('svcCounters: this lab has no service LAN (LabOptions.serviceLan)')
    const r = await runAsync('bash', [TOPO, 'svc-counters'], { env: this.env })
    if (r.code !== 0) throw new Error(`topo.sh svc-counters failed (code ${r.code}): ${r.stderr}`)
    const out: Record<string, SvcCounters> = {}
    for (const l of r.stdout.trim().split('\n').slice(1).filter(x => x !== '')) {
      const [host = '', ip = '', rx = '', tx = '', rxb = '', txb = ''] = l.split('\t')
      out[host] = { ip, rxPackets: Number(rx), txPackets: Number(tx), rxBytes: Number(rxb), txBytes: Number(txb) }
    }
    return out
  }

  /** down() will remove /var/run/wireguard/<name>.sock (wireguard-go's UAPI sockets are not
   *  per namespace and survive a SIGKILLed wireguard-go) */
  registerWgInterface (name: string): void {
    if (!/^[A-Za-z0-9_.=-]{1,15}$/.test(name)) throw new Error(`bad interface name '${name}'`)
    appendFileSync(join(this.stateDir, 'wg-sockets'), `${name}\n`)
  }

  /** unique-on-this-machine interface name (wireguard-go sockets are global) */
  static wgIfname (): string { return `wgl${randomBytes(3).toString('hex')}` }

  /** start a real wireguard-go interface in host (foreground process, recorded PID), with a
   *  fresh key pair (private key only ever in a 0600 file / stdin, never argv) */
  async wireguard (host: string, opts: WgOptions = {}): Promise<WgInterface> {
    const ifname = opts.ifname ?? Lab.wgIfname()
    this.registerWgInterface(ifname)
    const proc = this.spawn(`wg-${host}-${ifname}`, host, ['wireguard-go', ifname], {
      env: { WG_PROCESS_FOREGROUND: '1', LOG_LEVEL: 'error' }
    })
    const sock = `/var/run/wireguard/${ifname}.sock`
    for (let i = 0; !existsSync(sock); i++) {
      if (proc.exited || i > 100) throw new Error(`wireguard-go ${ifname} in ${host} did not start: ${proc.log()}`)
      await new Promise(resolve => setTimeout(resolve, 20))
    }
    const priv = (await this.run(host, ['wg', 'genkey'])).trim()
    const publicKey = (await this.run(host, ['wg', 'pubkey'], { input: `${priv}\n` })).trim()
    const keyFile = join(this.stateDir, `${ifname}.key`)
    writeFileSync(keyFile, `${priv}\n`, { mode: 0o600 })
    const set = ['wg', 'set', ifname, 'private-key', keyFile]
    if (opts.listenPort !== undefined) set.push('listen-port', String(opts.listenPort))
    try { await this.run(host, set) } finally { rmSync(keyFile, { force: true }) }
    for (const a of opts.addresses ?? []) await this.run(host, ['ip', 'addr', 'add', a, 'dev', ifname])
    await this.run(host, ['ip', 'link', 'set', ifname, 'up'])
    const lab = this // eslint-disable-line @typescript-eslint/no-this-alias -- used inside the returned object literal's methods
    return {
      host,
      ifname,
      publicKey,
      listenPort: opts.listenPort,
      proc,
      async setPeer (peer: WgPeer): Promise<void> {
        const argv = ['wg', 'set', ifname, 'peer', peer.publicKey, 'allowed-ips', peer.allowedIps.join(',')]
        if (peer.endpoint !== undefined) argv.push('endpoint', peer.endpoint)
        if (peer.persistentKeepalive !== undefined) argv.push('persistent-keepalive', String(peer.persistentKeepalive))
        await lab.run(host, argv)
      },
      async dump (): Promise<string> { return await lab.run(host, ['wg', 'show', ifname, 'dump']) }
    }
  }

  /** Start a real UPnP IGD v2 + NAT-PMP gateway (Debian's miniupnpd, `-d`, recorded PID) in
   *  the router of `hostOrRouter` (natK, natK-b or r-natK): `topo.sh upnp ROUTER on`. Mapped
   *  ports (DNAT) become reachable from the internet. Enabling it again restarts it. */
  async enableUpnp (hostOrRouter: string): Promise<UpnpGateway> {
    this.assertUp()
    const r = await runAsync('bash', [TOPO, 'upnp', hostOrRouter, 'on'], {
      env: { ...this.env, LAB_NODE: process.execPath, LAB_UPNP_LOGDIR: this.logDir }
    })
    if (r.code !== 0) throw new Error(`topo.sh upnp ${hostOrRouter} on failed (code ${r.code}): ${r.stderr}${r.stdout}`)
    const kv = Object.fromEntries(r.stdout.split('\n').map(l => /^([a-z_]+)=(.*)$/.exec(l))
      .filter((m): m is RegExpExecArray => m !== null).map(m => [m[1] as string, m[2] as string]))
    const logFile = kv.log ?? ''
    return {
      router: kv.router ?? '',
      ns: kv.ns ?? '',
      lanIp: kv.lan_ip ?? '',
      wanIp: kv.wan_ip ?? '',
      lanSubnet: kv.lan_subnet ?? '',
      httpPort: Number(kv.http_port),
      descUrl: kv.desc_url ?? '',
      pid: Number(kv.pid),
      stunPid: Number(kv.stun_pid),
      logFile,
      configFile: kv.config ?? '',
      log: () => { try { return readFileSync(logFile, 'utf8') } catch { return '' } }
    }
  }

  /** stop the router's miniupnpd (by recorded PID), remove its nft chains and DNATed conntrack
   *  entries, forget its leases */
  async disableUpnp (hostOrRouter: string): Promise<void> {
    this.assertUp()
    const r = await runAsync('bash', [TOPO, 'upnp', hostOrRouter, 'off'], { env: this.env })
    if (r.code !== 0) throw new Error(`topo.sh upnp ${hostOrRouter} off failed (code ${r.code}): ${r.stderr}`)
  }

  /** whether miniupnpd runs in the router, and its current DNAT rules (one string per mapping,
   *  e.g. 'iif "wan" @nh,72,8 0x11 th dport 51820 dnat ip to 192.0.2.2:51820') */
  async upnpStatus (hostOrRouter: string): Promise<{ enabled: boolean, mappings: string[] }> {
    this.assertUp()
    const r = await runAsync('bash', [TOPO, 'upnp', hostOrRouter, 'status'], { env: this.env })
    if (r.code !== 0) throw new Error(`topo.sh upnp ${hostOrRouter} status failed (code ${r.code}): ${r.stderr}`)
    const lines = r.stdout.split('\n')
    return {
      enabled: lines.includes('upnp=on'),
      mappings: lines.filter(l => l.startsWith('mapping=')).map(l => l.slice('mapping='.length).trim())
    }
  }

  /** kill every recorded process (SIGTERM, SIGKILL after 3 s), remove registered wireguard-go
   *  sockets, delete every recorded namespace. Idempotent. Throws if something is left. */
  async down (): Promise<void> {
    if (this.isDown) return
    this.isDown = true
    // every process is signalled even if one signal fails; topo.sh down then kills what is left
    // by recorded PID, and the failures are reported (not swallowed) once the lab is gone
    const kills = await Promise.allSettled([...this.procs].map(async p => await p.kill('SIGTERM')))
    const r = await runAsync('bash', [TOPO, 'down'], { env: this.env })
    activeLabs.delete(this)
    if (r.code !== 0) throw new Error(`topo.sh down failed (code ${r.code}): ${r.stderr}`)
    const failed = kills.flatMap(k => k.status === 'rejected' && (k.reason as NodeJS.ErrnoException)?.code !== 'ESRCH' ? [String(k.reason)] : [])
    if (failed.length > 0) throw new Error(`lab down: signalling processes failed: ${failed.join('; ')}`)
  }

  /** synchronous variant used by the exit/signal handlers */
  downSync (): void {
    if (this.isDown) return
    this.isDown = true
    activeLabs.delete(this)
    spawnSync('bash', [TOPO, 'down'], { env: { ...process.env, ...this.env }, stdio: ['ignore', 'ignore', 'inherit'] })
  }
}

class LabProcessImpl implements LabProcess {
  exited = false
  private readonly done: Promise<ExitInfo>

  constructor (readonly label: string, readonly host: string, private readonly rec: PidRecord,
    readonly logFile: string, child: ChildProcess, onExit: () => void) {
    this.done = new Promise(resolve => {
      child.on('exit', (code, signal) => { this.exited = true; onExit(); resolve({ code, signal }) })
    })
  }

  get pid (): number { return this.rec.pid }

  async wait (): Promise<ExitInfo> { return await this.done }

  async kill (signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (this.exited || !pidIsOurs(this.rec)) return
    process.kill(this.rec.pid, signal)
    if (signal !== 'SIGTERM' && signal !== 'SIGKILL') return
    if (signal === 'SIGTERM') {
      try { process.kill(this.rec.pid, 'SIGCONT') } catch {}
      const t = setTimeout(() => {
        if (!this.exited && pidIsOurs(this.rec)) process.kill(this.rec.pid, 'SIGKILL')
      }, 3000)
      await this.done
      clearTimeout(t)
    } else {
      await this.done
    }
  }

  log (): string {
    try { return readFileSync(this.logFile, 'utf8') } catch { return '' }
  }
}
