/**
 * Agent options shared by `up` and `join`: every flag has a WGMESH_* environment twin, and
 * flags win over the environment. Secrets are only read from files or the environment.
 */
import { lstatSync, readFileSync, statSync } from 'node:fs'
import { dirname } from 'node:path'
import { Option, type Command } from 'commander'
import { DEFAULT_STATE_DIR, checkRouteInit, parseMeshKey, type AgentInit } from '@wgmesh/agent'

/** @default 'wgmesh' — the domain of the names in --hosts-file (also the agent's default). */
export const DEFAULT_MESH_DOMAIN = 'wgmesh'
import {
  DEFAULT_MAX_CLOCK_SKEW_MS, DEFAULT_DEAD_AFTER_MS, DEFAULT_EXPIRE_AFTER_MS, DEFAULT_GOSSIP_PORT, DEFAULT_HEARTBEAT_MS, DEFAULT_INTERFACE,
  DEFAULT_KEEPALIVE_S, DEFAULT_MESH_CIDR, DEFAULT_MTU, DEFAULT_WG_PORT,
  formatCidr, gossipHostProblem, GOSSIP_HOST_ALL, meshSettings, parseCidr, parseGossipAddr, parseIPv4, parseIPv6, parseRouteSpec, v6Scope
} from '@wgmesh/core'
import { ExitError } from './errors.js'

/** The wgmesh version (CLI, bundle, npm package, wgmesh_build_info); program.ts re-exports it. */
export const VERSION = '0.1.0'

/** "1500", "1500ms", "3s", "2m", "1h", "365d" → milliseconds. */
export function parseDuration (s: string): number {
  const m = /^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)?$/.exec(s.trim())
  if (m === null) throw new ExitError(`'${s}' is not a duration (e.g. 500ms, 3s, 2m, 1h, 365d; a bare number is ms)`, 2)
  const mult = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(m[2] ?? 'ms') as 'ms' | 's' | 'm' | 'h' | 'd']
  return Math.round(Number(m[1]) * mult)
}

/** parseDuration for a flag: the error names it. */
function durationOf (name: string) {
  return (s: string): number => {
    try { return parseDuration(s) } catch (err) { throw new ExitError(`${name}: ${(err as Error).message}`, 2) }
  }
}

function intIn (name: string, min: number, max: number) {
  return (s: string): number => {
    if (!/^[0-9]+$/.test(s.trim()) || Number(s) < min || Number(s) > max) throw new ExitError(`${name} must be an integer in ${min}..${max}, got '${s}'`, 2)
    return Number(s)
  }
}

const list = (v: string, prev: string[] | undefined): string[] => [...(prev ?? []), ...v.split(',').map(x => x.trim()).filter(x => x !== '')]

export function sharedOptions (cmd: Command): Command {
  return cmd
    .addOption(new Option('--state-dir <dir>', 'state directory (keys, addresses, known members)').env('WGMESH_STATE_DIR').default(DEFAULT_STATE_DIR))
}

export function agentOptions (cmd: Command): Command {
  return sharedOptions(cmd)
    .addOption(new Option('--peer <host[:port]>', `a member to join through (repeatable; port defaults to ${DEFAULT_GOSSIP_PORT})`).env('WGMESH_PEERS').argParser(list))
    .addOption(new Option('--mesh-key-file <file>', 'file holding the mesh key (or set WGMESH_MESH_KEY to the key itself)').env('WGMESH_MESH_KEY_FILE'))
    .addOption(new Option('--name <name>', 'node name shown to others').env('WGMESH_NAME').default(undefined, 'the hostname'))
    .addOption(new Option('--interface <name>', 'WireGuard interface').env('WGMESH_INTERFACE').default(DEFAULT_INTERFACE))
    .addOption(new Option('--backend <kind>', 'WireGuard backend').choices(['auto', 'kernel', 'userspace', 'existing']).env('WGMESH_BACKEND').default('auto'))
    .addOption(new Option('--listen-port <port>', 'WireGuard UDP port').env('WGMESH_LISTEN_PORT').argParser(intIn('--listen-port', 1, 65535)).default(DEFAULT_WG_PORT))
    .addOption(new Option('--gossip-port <port>', 'gossip TCP port').env('WGMESH_GOSSIP_PORT').argParser(intIn('--gossip-port', 0, 65535)).default(DEFAULT_GOSSIP_PORT))
    .addOption(new Option('--gossip-host <ip>', 'address the gossip listener binds: :: = every address of both families (one socket each), 0.0.0.0 = every IPv4 address, or one address of this host').env('WGMESH_GOSSIP_HOST').default(GOSSIP_HOST_ALL))
    .addOption(new Option('--cidr <cidr>', 'mesh IPv4 range (all members must agree)').env('WGMESH_CIDR').default(DEFAULT_MESH_CIDR))
    .addOption(new Option('--advertise <ip:port>', 'extra WireGuard endpoint to advertise first, e.g. a public address (repeatable)').env('WGMESH_ADVERTISE').argParser(list))
    .addOption(new Option('--tag <tag>', 'label shown to others (repeatable)').env('WGMESH_TAGS').argParser(list))
    .addOption(new Option('--heartbeat <duration>', 'failure-detector probe interval (each node pings its two ring successors this often)').env('WGMESH_HEARTBEAT').argParser(durationOf('--heartbeat')).default(DEFAULT_HEARTBEAT_MS, '1s'))
    .addOption(new Option('--dead-after <duration>', 'a member whose tunnel stops answering is marked dead everywhere within this').env('WGMESH_DEAD_AFTER').argParser(durationOf('--dead-after')).default(DEFAULT_DEAD_AFTER_MS, '3s'))
    .addOption(new Option('--expire-after <duration>', 'a dead member is removed this long after it was last alive').env('WGMESH_EXPIRE_AFTER').argParser(durationOf('--expire-after')).default(DEFAULT_EXPIRE_AFTER_MS, '1h'))
    .addOption(new Option('--keepalive <seconds>', 'WireGuard persistent keepalive on direct paths, sent only from behind a NAT (0 = off)').env('WGMESH_KEEPALIVE').argParser(intIn('--keepalive', 0, 65535)).default(DEFAULT_KEEPALIVE_S))
    .addOption(new Option('--mtu <bytes>', 'interface MTU').env('WGMESH_MTU').argParser(intIn('--mtu', 1280, 9000)).default(DEFAULT_MTU))
    .addOption(new Option('--stun-port <port>', 'UDP port of this node\'s STUN server, which also answers on port+1 (0 = none)').env('WGMESH_STUN_PORT').argParser(intIn('--stun-port', 0, 65534)).default(3478))
    .addOption(new Option('--stun-server <ip:port>', 'extra STUN server to probe besides the members\' own (repeatable)').env('WGMESH_STUN_SERVERS').argParser(list))
    .addOption(new Option('--relay <mode>', 'relay traffic for peers that cannot reach each other directly').choices(['auto', 'on', 'off']).env('WGMESH_RELAY').default('auto', 'auto: when this node is public'))
    .addOption(new Option('--upnp <mode>', 'ask the router for a UPnP-IGD/NAT-PMP mapping of the WireGuard port').choices(['on', 'off']).env('WGMESH_UPNP').default('on'))
    .addOption(new Option('--lan-port <port>', 'UDP port of LAN discovery beacons (0 = off)').env('WGMESH_LAN_PORT').argParser(intIn('--lan-port', 0, 65535)).default(undefined, 'gossip port + 1'))
    .addOption(new Option('--probe-port <port>', 'UDP port of the failure detector\'s probes (reached over the mesh interface)').env('WGMESH_PROBE_PORT').argParser(intIn('--probe-port', 0, 65535)).default(undefined, 'gossip port + 2'))
    .addOption(new Option('--ca <file>', 'certificate mode: the mesh CA\'s public file (ca.pub from \'wgmesh ca init\'); only members with a valid certificate of this CA are accepted (needs --cert)').env('WGMESH_CA'))
    .addOption(new Option('--cert <file>', 'certificate mode: this node\'s certificate (\'wgmesh ca sign\' for the nodeId \'wgmesh id\' prints; needs --ca)').env('WGMESH_CERT'))
    .addOption(new Option('--max-clock-skew <duration>', 'records dated further ahead, and certificates further outside their validity, are refused').env('WGMESH_MAX_CLOCK_SKEW').argParser(durationOf('--max-clock-skew')).default(DEFAULT_MAX_CLOCK_SKEW_MS, '5m'))
    .addOption(new Option('--metrics-listen <[host:]port>', 'serve Prometheus metrics over HTTP at http://HOST:PORT/metrics (HOST 127.0.0.1 unless given; a non-loopback HOST needs --metrics-allow-remote)').env('WGMESH_METRICS_LISTEN'))
    .addOption(new Option('--metrics-allow-remote', 'allow a non-loopback --metrics-listen address: the metrics name every peer (names, nodeIds, traffic) to anyone who can connect').env('WGMESH_METRICS_ALLOW_REMOTE'))
    .addOption(new Option('--hosts-file <file>', 'keep the names of the live members (name and name.<mesh-domain>) in a block of this hosts file, e.g. /etc/hosts').env('WGMESH_HOSTS_FILE'))
    .addOption(new Option('--mesh-domain <domain>', 'domain of the names in --hosts-file').env('WGMESH_MESH_DOMAIN').default(DEFAULT_MESH_DOMAIN))
    .addOption(new Option('--advertise-route <cidr>', 'a subnet this host reaches, offered to the mesh through it (repeatable; 0.0.0.0/0 or ::/0 makes it an exit node); it forwards from the mesh to these subnets only, masquerading').env('WGMESH_ADVERTISE_ROUTES').argParser(list))
    .addOption(new Option('--route-group <name>', 'gateway group of the advertised routes: of the live members of a group exactly one is the active gateway, the same on every node').env('WGMESH_ROUTE_GROUP').default(undefined, 'the node name'))
    .addOption(new Option('--route-priority <n>', 'priority in the gateway group, 0..1000 (higher preferred)').env('WGMESH_ROUTE_PRIORITY').argParser(intIn('--route-priority', 0, 1000)).default(100))
    .addOption(new Option('--route-return <policy>', 'when a higher-priority gateway comes back: preferred = it takes over after 5 s; sticky = the active one stays').choices(['preferred', 'sticky']).env('WGMESH_ROUTE_RETURN').default('preferred'))
    .addOption(new Option('--route-masquerade <mode>', 'masquerade what this gateway forwards from the mesh (off: the subnet must route the mesh ranges back to the gateways itself)').choices(['on', 'off']).env('WGMESH_ROUTE_MASQUERADE').default('on'))
    .addOption(new Option('--gateway-hook <file>', 'executable run as FILE active|standby GROUP when this node becomes or stops being its group\'s active gateway (e.g. to move a LAN address)').env('WGMESH_GATEWAY_HOOK'))
    .addOption(new Option('--exit-node <group>', 'send this host\'s default route through the active gateway of GROUP (gateways advertising 0.0.0.0/0 or ::/0); peers\' addresses and WireGuard itself keep the host\'s own routes').env('WGMESH_EXIT_NODE'))
    .addOption(new Option('--log-level <level>', 'log level').choices(['error', 'warn', 'info', 'debug']).env('WGMESH_LOG_LEVEL').default('info'))
    .addOption(new Option('--log-format <format>', 'log format').choices(['auto', 'json', 'text']).env('WGMESH_LOG_FORMAT').default('auto', 'json unless stdout is a terminal'))
}

export interface AgentFlags {
  stateDir: string
  peer?: string[]
  meshKeyFile?: string
  name?: string
  interface: string
  backend: 'auto' | 'kernel' | 'userspace' | 'existing'
  listenPort: number
  probePort?: number
  gossipPort: number
  gossipHost: string
  cidr: string
  advertise?: string[]
  tag?: string[]
  heartbeat: number
  deadAfter: number
  expireAfter: number
  keepalive: number
  mtu: number
  stunPort: number
  stunServer?: string[]
  relay: 'auto' | 'on' | 'off'
  upnp: 'on' | 'off'
  lanPort?: number
  ca?: string
  cert?: string
  maxClockSkew: number
  hostsFile?: string
  meshDomain: string
  metricsListen?: string
  metricsAllowRemote?: boolean
  advertiseRoute?: string[]
  routeGroup?: string
  routePriority: number
  routeReturn: 'preferred' | 'sticky'
  routeMasquerade: 'on' | 'off'
  gatewayHook?: string
  exitNode?: string
  logLevel: 'error' | 'warn' | 'info' | 'debug'
  logFormat: 'auto' | 'json' | 'text'
}

/** The mesh key from --mesh-key-file / WGMESH_MESH_KEY_FILE, or WGMESH_MESH_KEY. Never from argv. */
export function readMeshKey (flags: AgentFlags, env: NodeJS.ProcessEnv = process.env): Uint8Array | undefined {
  if (flags.meshKeyFile !== undefined) {
    let text: string
    try {
      const st = statSync(flags.meshKeyFile)
      if (!st.isFile()) throw new Error('not a regular file (pass the file mesh.key itself)')
      if ((st.mode & 0o077) !== 0) process.stderr.write(`wgmesh: warning: ${flags.meshKeyFile} is readable by others; chmod 600 it\n`)
      text = readFileSync(flags.meshKeyFile, 'utf8')
    } catch (err) {
      throw new ExitError(`cannot read the mesh key file ${flags.meshKeyFile}: ${(err as Error).message}`, 2)
    }
    try { return parseMeshKey(text, flags.meshKeyFile) } catch (err) { throw new ExitError((err as Error).message, 2) }
  }
  const v = env.WGMESH_MESH_KEY
  if (v !== undefined && v !== '') {
    try { return parseMeshKey(v, 'WGMESH_MESH_KEY') } catch (err) { throw new ExitError((err as Error).message, 2) }
  }
  return undefined
}

export function agentInit (flags: AgentFlags): Omit<AgentInit, 'logger'> {
  return {
    stateDir: flags.stateDir,
    peers: flags.peer?.map(parseSeed),
    name: flags.name,
    interface: flags.interface,
    backend: flags.backend,
    wgPort: flags.listenPort,
    gossipPort: flags.gossipPort,
    gossipHost: flags.gossipHost.trim(),
    cidr4: flags.cidr,
    advertise: flags.advertise,
    tags: flags.tag,
    heartbeatMs: flags.heartbeat,
    deadAfterMs: flags.deadAfter,
    expireAfterMs: flags.expireAfter,
    keepaliveS: flags.keepalive,
    mtu: flags.mtu,
    stunPort: flags.stunPort,
    stunServers: flags.stunServer,
    relay: flags.relay,
    upnp: flags.upnp === 'on',
    lanPort: flags.lanPort,
    probePort: flags.probePort,
    ca: flags.ca,
    cert: flags.cert,
    maxClockSkewMs: flags.maxClockSkew,
    hostsFile: flags.hostsFile,
    meshDomain: flags.meshDomain,
    metricsListen: flags.metricsListen,
    metricsAllowRemote: flags.metricsAllowRemote === true,
    advertiseRoutes: flags.advertiseRoute,
    routeGroup: flags.routeGroup,
    routePriority: flags.routePriority,
    routeReturn: flags.routeReturn,
    routeMasquerade: flags.routeMasquerade === 'on',
    gatewayHook: flags.gatewayHook,
    exitNode: flags.exitNode,
    version: VERSION
  }
}

const DNS_RE = /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/
const SEED_EXAMPLES = 'e.g. 198.18.1.1, 198.18.1.1:51821, [2001:db8::1]:51821, seed.example.org or a multiaddr /ip4/198.18.1.1/tcp/51821'

/**
 * A --peer value → the multiaddr dialed. The port defaults to 51821 (the default gossip port:
 * not this node's own --gossip-port, which may be 0 = any). Bad input → exit 2 naming the flag.
 */
export function parseSeed (seed: string): string {
  const s = seed.trim()
  const bad = (why: string): never => { throw new ExitError(`--peer '${seed}' is not host[:port]: ${why} (${SEED_EXAMPLES})`, 2) }
  const port = (p: string | undefined): number => {
    if (p === undefined) return DEFAULT_GOSSIP_PORT
    if (!/^[0-9]{1,5}$/.test(p) || Number(p) < 1 || Number(p) > 65535) bad(`port '${p}' is not in 1..65535`)
    return Number(p)
  }
  const dialableV6 = (a: string): void => {
    const scope = v6Scope(a)
    if (scope === 'link-local') bad(`'${a}' is IPv6 link-local, which needs a zone: give a global address of the member`)
    if (scope === 'unspecified' || scope === 'multicast') bad(`'${a}' is not a unicast address`)
  }
  if (s === '') bad('it is empty')
  if (s.startsWith('/')) {
    if (parseGossipAddr(s) === undefined) bad('not a multiaddr of a gossip listener (/ip4|/ip6|/dns4|/dns6|/dns/<host>/tcp/<port>[/p2p/<id>])')
    return s
  }
  if (s.startsWith('[')) {
    const m = /^\[([^\]]*)\](?::(.*))?$/.exec(s)
    if (m === null) return bad('an IPv6 address in brackets needs its closing \']\'')
    if (parseIPv6(m[1]!) === undefined) bad(`'${m[1]!}' is not an IPv6 address`)
    dialableV6(m[1]!)
    return `/ip6/${m[1]!}/tcp/${port(m[2])}`
  }
  if ((s.match(/:/g) ?? []).length >= 2) {
    if (parseIPv6(s) === undefined) bad('not an IPv6 address (write [addr]:port for a port)')
    dialableV6(s)
    return `/ip6/${s}/tcp/${DEFAULT_GOSSIP_PORT}`
  }
  const [host, p] = s.split(':') as [string, string | undefined]
  if (host === '') bad('the host is missing')
  if (p === '') bad('the port is missing after \':\'')
  const n = port(p)
  if (/^[0-9.]+$/.test(host)) {
    if (parseIPv4(host) === undefined) bad(`'${host}' is not an IPv4 address`)
    return `/ip4/${host}/tcp/${n}`
  }
  if (!DNS_RE.test(host)) bad(`'${host}' is neither an IP address nor a host name (letters, digits, '-' and '.')`)
  return `/dns/${host}/tcp/${n}` // resolved to either family when dialed
}

/**
 * Every agent flag and environment value, and their combinations, checked before anything is
 * written or started: one line naming the flag and the fix, exit 2.
 */
export function validateAgentFlags (flags: AgentFlags): void {
  for (const p of flags.peer ?? []) parseSeed(p)
  const hostProblem = gossipHostProblem(flags.gossipHost.trim())
  if (hostProblem !== undefined) {
    throw new ExitError(`--gossip-host '${flags.gossipHost}' ${hostProblem}: it is the address the gossip listener binds (:: = every address of both families, 0.0.0.0 = every IPv4 address, or one of this host's addresses)`, 2)
  }
  let cidr
  try { cidr = parseCidr(flags.cidr) } catch {
    throw new ExitError(`--cidr '${flags.cidr}' is not an IPv4 CIDR (e.g. ${DEFAULT_MESH_CIDR})`, 2)
  }
  if (cidr.family !== 4) throw new ExitError(`--cidr '${flags.cidr}' is IPv6: it is the mesh's IPv4 range (the IPv6 range comes from the mesh key), e.g. ${DEFAULT_MESH_CIDR}`, 2)
  if (cidr.prefix > 29) throw new ExitError(`--cidr '${flags.cidr}' is too small: /29 or larger (e.g. ${DEFAULT_MESH_CIDR})`, 2)
  if (formatCidr(cidr) !== flags.cidr.trim()) throw new ExitError(`--cidr '${flags.cidr}' has host bits set: did you mean ${formatCidr(cidr)}?`, 2)
  try {
    meshSettings({ cidr4: flags.cidr, heartbeatMs: flags.heartbeat, deadAfterMs: flags.deadAfter, expireAfterMs: flags.expireAfter, keepaliveS: flags.keepalive, maxClockSkewMs: flags.maxClockSkew })
  } catch (err) {
    throw new ExitError((err as Error).message.replace(/\b(heartbeat|dead-after|expire-after|max-clock-skew|keepalive)\b/g, '--$1'), 2)
  }
  if (!/^[A-Za-z0-9_.=+-]{1,15}$/.test(flags.interface) || flags.interface === '.' || flags.interface === '..') {
    throw new ExitError(`--interface '${flags.interface}' is not a Linux interface name: 1..15 characters of A-Z a-z 0-9 _ . = + - (e.g. ${DEFAULT_INTERFACE})`, 2)
  }
  if (flags.meshDomain.length > 200 || !flags.meshDomain.split('.').every(l => /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(l))) {
    throw new ExitError(`--mesh-domain '${flags.meshDomain}' is not a domain name: lower-case labels of a-z 0-9 - separated by dots (e.g. ${DEFAULT_MESH_DOMAIN})`, 2)
  }
  const routeErrors: string[] = []
  for (const r of flags.advertiseRoute ?? []) {
    const p = parseRouteSpec(r, [flags.cidr])
    if (!p.ok) routeErrors.push(p.error)
  }
  if (routeErrors.length > 0) throw new ExitError(`--advertise-route: ${routeErrors.join('; ')}`, 2)
  try { checkRouteInit(agentInitRoutes(flags)) } catch (err) { throw new ExitError((err as Error).message, 2) }
  if (flags.metricsListen !== undefined) checkMetricsListen(flags.metricsListen, flags.metricsAllowRemote === true)
  if (flags.hostsFile !== undefined) {
    const f = flags.hostsFile
    if (!f.startsWith('/')) throw new ExitError(`--hosts-file '${f}' must be an absolute path (e.g. /etc/hosts)`, 2)
    let st
    try { st = lstatSync(f) } catch { st = undefined }
    if (st?.isSymbolicLink() === true) throw new ExitError(`--hosts-file ${f} is a symbolic link: pass the file it points to`, 2)
    if (st !== undefined && !st.isFile()) throw new ExitError(`--hosts-file ${f} is not a regular file`, 2)
    let dir
    try { dir = statSync(dirname(f)) } catch { dir = undefined }
    if (dir?.isDirectory() !== true) throw new ExitError(`--hosts-file ${f}: its directory ${dirname(f)} does not exist`, 2)
  }
}

/**
 * --metrics-listen: "PORT", ":PORT", "HOST:PORT" or "[IPv6]:PORT" with HOST an IP address or
 * localhost; a non-loopback HOST only with --metrics-allow-remote (the agent checks the same).
 */
function checkMetricsListen (v: string, allowRemote: boolean): void {
  const m = /^(?:(?:\[([0-9a-fA-F:.]+)\]|([0-9.]+|localhost))?:)?([0-9]{1,5})$/.exec(v.trim())
  const host = m === null ? undefined : m[1] ?? (m[2] === undefined || m[2] === 'localhost' ? '127.0.0.1' : m[2])
  if (m === null || Number(m[3]) > 65535 || (parseIPv4(host!) === undefined && parseIPv6(host!) === undefined)) {
    throw new ExitError(`--metrics-listen '${v}' is not [HOST:]PORT (e.g. 9586, 127.0.0.1:9586, [::1]:9586; HOST an IP address)`, 2)
  }
  const loopback = host!.startsWith('127.') || host === '::1'
  if (!loopback && !allowRemote) {
    throw new ExitError(`--metrics-listen ${v} is not a loopback address: the metrics name every peer (names, nodeIds, traffic) to whoever can connect, without authentication; add --metrics-allow-remote to serve them there anyway (and firewall the port), or listen on 127.0.0.1`, 2)
  }
}

function agentInitRoutes (flags: AgentFlags): Pick<AgentInit, 'advertiseRoutes' | 'routeGroup' | 'routePriority' | 'gatewayHook' | 'exitNode'> {
  const a = agentInit(flags)
  return { advertiseRoutes: a.advertiseRoutes, routeGroup: a.routeGroup, routePriority: a.routePriority, gatewayHook: a.gatewayHook, exitNode: a.exitNode }
}
