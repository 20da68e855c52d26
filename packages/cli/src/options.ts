/**
 * Agent options shared by `up` and `join`: every flag has a WGMESH_* environment twin, and
 * flags win over the environment. Secrets are only read from files or the environment.
 */
import { readFileSync, statSync } from 'node:fs'
import { Option, type Command } from 'commander'
import { DEFAULT_STATE_DIR, parseMeshKey, type AgentInit } from '@wgmesh/agent'
import {
  DEFAULT_MAX_CLOCK_SKEW_MS, DEFAULT_DEAD_AFTER_MS, DEFAULT_EXPIRE_AFTER_MS, DEFAULT_GOSSIP_PORT, DEFAULT_HEARTBEAT_MS, DEFAULT_INTERFACE,
  DEFAULT_KEEPALIVE_S, DEFAULT_MESH_CIDR, DEFAULT_MTU, DEFAULT_WG_PORT
} from '@wgmesh/core'
import { ExitError } from './errors.js'

/** "1500", "1500ms", "3s", "2m", "1h", "365d" → milliseconds. */
export function parseDuration (s: string): number {
  const m = /^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)?$/.exec(s.trim())
  if (m === null) throw new ExitError(`'${s}' is not a duration (e.g. 500ms, 3s, 2m, 1h, 365d; a bare number is ms)`, 2)
  const mult = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(m[2] ?? 'ms') as 'ms' | 's' | 'm' | 'h' | 'd']
  return Math.round(Number(m[1]) * mult)
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
    .addOption(new Option('--gossip-host <ip>', 'address the gossip listener binds').env('WGMESH_GOSSIP_HOST').default('0.0.0.0'))
    .addOption(new Option('--cidr <cidr>', 'mesh IPv4 range (all members must agree)').env('WGMESH_CIDR').default(DEFAULT_MESH_CIDR))
    .addOption(new Option('--advertise <ip:port>', 'extra WireGuard endpoint to advertise first, e.g. a public address (repeatable)').env('WGMESH_ADVERTISE').argParser(list))
    .addOption(new Option('--tag <tag>', 'label shown to others (repeatable)').env('WGMESH_TAGS').argParser(list))
    .addOption(new Option('--heartbeat <duration>', 'failure-detector probe interval (each node pings its two ring successors this often)').env('WGMESH_HEARTBEAT').argParser(parseDuration).default(DEFAULT_HEARTBEAT_MS, '1s'))
    .addOption(new Option('--dead-after <duration>', 'a member whose tunnel stops answering is marked dead everywhere within this').env('WGMESH_DEAD_AFTER').argParser(parseDuration).default(DEFAULT_DEAD_AFTER_MS, '3s'))
    .addOption(new Option('--expire-after <duration>', 'a dead member is removed this long after it was last alive').env('WGMESH_EXPIRE_AFTER').argParser(parseDuration).default(DEFAULT_EXPIRE_AFTER_MS, '1h'))
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
    .addOption(new Option('--max-clock-skew <duration>', 'records dated further ahead, and certificates further outside their validity, are refused').env('WGMESH_MAX_CLOCK_SKEW').argParser(parseDuration).default(DEFAULT_MAX_CLOCK_SKEW_MS, '5m'))
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
  logLevel: 'error' | 'warn' | 'info' | 'debug'
  logFormat: 'auto' | 'json' | 'text'
}

/** The mesh key from --mesh-key-file / WGMESH_MESH_KEY_FILE, or WGMESH_MESH_KEY. Never from argv. */
export function readMeshKey (flags: AgentFlags, env: NodeJS.ProcessEnv = process.env): Uint8Array | undefined {
  if (flags.meshKeyFile !== undefined) {
    let text: string
    try {
      const st = statSync(flags.meshKeyFile)
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
    peers: flags.peer,
    name: flags.name,
    interface: flags.interface,
    backend: flags.backend,
    wgPort: flags.listenPort,
    gossipPort: flags.gossipPort,
    gossipHost: flags.gossipHost,
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
    maxClockSkewMs: flags.maxClockSkew
  }
}
