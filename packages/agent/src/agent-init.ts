/** The agent's options (the CLI fills them from flags and WGMESH_* variables). */
import { accessSync, constants as fsConstants } from 'node:fs'
import { InvalidConfigError, isValidTag, MAX_TAGS, parseEndpoint } from '@wgmesh/core'
import type { BackendKind, CommandRunner } from '@wgmesh/wireguard'
import type { Logger } from './logger.js'
import { isLoopback, parseListen } from './metrics-server.js'
import { isMarkerInterface, isMeshDomain } from './hosts-block.js'
import { seedToMultiaddr } from './dial-policy.js'

/** @default 'wgmesh' — the domain of the names in `--hosts-file`. */
export const DEFAULT_MESH_DOMAIN = 'wgmesh'

export interface AgentInit {
  /** State directory (keys, addresses, known members). @default '/var/lib/wgmesh' */
  stateDir: string
  /** Mesh key to use (join). Must match a stored one if the state dir has one. */
  meshKey?: Uint8Array
  /** Create a new mesh key when none is given or stored (`wgmesh up`). */
  createMesh?: boolean
  /** Seeds: host[:port] or multiaddrs of any member. */
  peers?: string[]
  name?: string
  interface?: string
  wgPort?: number
  gossipPort?: number
  /** Address the gossip listener binds: '::' = every address of both families (one socket each), '0.0.0.0' = IPv4 only. @default '::' */
  gossipHost?: string
  cidr4?: string
  backend?: BackendKind | 'auto'
  /** Extra endpoint candidates to advertise first ("ip:port"), e.g. a public address. */
  advertise?: string[]
  tags?: string[]
  heartbeatMs?: number
  deadAfterMs?: number
  expireAfterMs?: number
  keepaliveS?: number
  mtu?: number
  /** UDP port of this node's STUN server (it also answers on port + 1); 0 = none. @default 3478 */
  stunPort?: number
  /** Extra STUN servers (host:port) to probe besides the members' own. */
  stunServers?: string[]
  /** Relay for others: 'auto' = when this node turns out to be public. @default 'auto' */
  relay?: 'auto' | 'on' | 'off'
  /** Ask the router for a UPnP-IGD / NAT-PMP mapping of the WireGuard port. @default true */
  upnp?: boolean
  /** UDP port for LAN discovery beacons; 0 = off. @default gossipPort + 1 (51822) */
  lanPort?: number
  /** UDP port of the failure detector's probe socket. @default gossipPort + 2 (51823); 0 = any */
  probePort?: number
  /** Where probes go: members' overlay addresses (inside WireGuard), or their gossip host (tests without WireGuard). @default 'overlay' */
  probeVia?: 'overlay' | 'underlay'
  /** How often paths are re-evaluated from WireGuard's counters. @default 500 */
  pathTickMs?: number
  /** How often the interface is compared with the plan and repaired (drift). @default 30000 */
  reconcileMs?: number
  /** Certificate mode: the mesh CA's public file (`ca.pub` from `wgmesh ca init`). Needs `cert`. */
  ca?: string
  /** Certificate mode: this node's certificate file (`wgmesh ca sign`). Needs `ca`. */
  cert?: string
  /** Records (and certificates) dated this far off our clock are refused. @default 300000 */
  maxClockSkewMs?: number
  /** Keep a block of names (`name`, `name.<meshDomain>` → overlay IPs of live members and self) in this hosts file. @default off */
  hostsFile?: string
  /** Domain of the hosts-file names. @default 'wgmesh' */
  meshDomain?: string
  /** Serve Prometheus metrics over HTTP here ("[HOST:]PORT"; HOST defaults to 127.0.0.1). @default off */
  metricsListen?: string
  /** Allow a non-loopback `metricsListen` address (it exposes peer names, nodeIds and traffic). */
  metricsAllowRemote?: boolean
  /** Subnets this host reaches, offered to the mesh (CIDR; 0.0.0.0/0 or ::/0 makes it an exit node). @default none */
  advertiseRoutes?: string[]
  /** Gateway group of the advertised routes: one member of a group is the active gateway. @default the node's name */
  routeGroup?: string
  /** Priority in the group, 0..1000, higher preferred. @default 100 */
  routePriority?: number
  /** A better gateway coming back: 'preferred' = takes over after `preemptDelayMs`; 'sticky' = the active one stays. @default 'preferred' */
  routeReturn?: 'preferred' | 'sticky'
  /** @default 5000 */
  preemptDelayMs?: number
  /** Masquerade what this gateway forwards from the mesh (replies come back to the gateway that carried the request). @default true */
  routeMasquerade?: boolean
  /** Run as `HOOK active|standby GROUP` when this node becomes or stops being its group's active gateway. */
  gatewayHook?: string
  /** Send this host's default route through the active gateway of this group (which advertises 0.0.0.0/0 and/or ::/0). */
  exitNode?: string
  /** Seam for tests: runs `ip route|rule`, `sysctl`, `nft` for routes. @default the real commands (a fake when `wgRunner` is a fake) */
  routeRunner?: CommandRunner
  /** This agent's version (wgmesh_build_info, `wgmesh info`). @default 'unknown' */
  version?: string
  /** Control socket path. @default '<stateDir>/wgmesh.sock' */
  controlSocket?: string
  logger?: Logger
  /** Seam for tests: a fake WireGuard host. */
  wgRunner?: CommandRunner
  /** Injected clock. @default Date.now */
  now?: () => number
}

/** Options checked before anything starts (a clear error instead of a half-started agent). */
export function checkInit (init: AgentInit): void {
  for (const t of init.tags ?? []) {
    if (!isValidTag(t)) throw new InvalidConfigError(`tag '${t}' is not valid: 1..64 characters of A-Z a-z 0-9 _ . : = / -`)
  }
  if ((init.tags ?? []).length > MAX_TAGS) throw new InvalidConfigError(`at most ${MAX_TAGS} tags`)
  if ((init.ca === undefined) !== (init.cert === undefined)) {
    throw new InvalidConfigError(init.ca === undefined
      ? '--cert needs --ca FILE too (the mesh CA\'s ca.pub, which checks every member\'s certificate)'
      : '--ca needs --cert FILE too (this node\'s certificate: on the CA host, \'wgmesh ca sign\' makes one for the nodeId \'wgmesh id\' prints)')
  }
  if (init.interface !== undefined && !isMarkerInterface(init.interface)) {
    throw new InvalidConfigError(`--interface '${init.interface}' is not a Linux interface name: 1..15 characters of A-Z a-z 0-9 _ . = + -`)
  }
  if (init.meshDomain !== undefined && !isMeshDomain(init.meshDomain)) {
    throw new InvalidConfigError(`--mesh-domain '${init.meshDomain}' is not a domain name: labels of a-z 0-9 - separated by dots (e.g. wgmesh or mesh.example.org)`)
  }
  if (init.hostsFile !== undefined && !init.hostsFile.startsWith('/')) throw new InvalidConfigError(`--hosts-file '${init.hostsFile}' must be an absolute path (e.g. /etc/hosts)`)
  for (const p of init.peers ?? []) {
    try { seedToMultiaddr(p, init.gossipPort === undefined || init.gossipPort === 0 ? 51821 : init.gossipPort) } catch (err) {
      throw new InvalidConfigError(`--peer ${(err as Error).message}`)
    }
  }
  if (init.metricsListen !== undefined) {
    const l = parseListen(init.metricsListen)
    if (l === undefined) throw new InvalidConfigError(`--metrics-listen '${init.metricsListen}' is not [HOST:]PORT (e.g. 9586, 127.0.0.1:9586, [::1]:9586; HOST an IP address)`)
    if (!isLoopback(l.host) && init.metricsAllowRemote !== true) {
      throw new InvalidConfigError(`--metrics-listen ${init.metricsListen} is not a loopback address: the metrics name every peer (names, nodeIds, traffic) to whoever can connect, without authentication; add --metrics-allow-remote to serve them there anyway (and firewall the port), or listen on 127.0.0.1`)
    }
  }
  checkRouteInit(init)
  for (const e of init.advertise ?? []) {
    if (parseEndpoint(e) === undefined) throw new InvalidConfigError(`--advertise '${e}' is not ip:port (e.g. 203.0.113.7:51820 or [2001:db8::7]:51820)`)
  }
}

const GROUP_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/

export function checkRouteInit (init: Pick<AgentInit, 'advertiseRoutes' | 'routeGroup' | 'routePriority' | 'gatewayHook' | 'exitNode'>): void {
  if (init.routeGroup !== undefined && !GROUP_RE.test(init.routeGroup)) {
    throw new InvalidConfigError(`--route-group '${init.routeGroup}' is not a group name: 1..63 characters of a-z 0-9 - (not at either end), e.g. office-gw`)
  }
  if (init.exitNode !== undefined && !GROUP_RE.test(init.exitNode)) {
    throw new InvalidConfigError(`--exit-node '${init.exitNode}' is not a group name: the --route-group of the gateways that advertise 0.0.0.0/0 (a-z 0-9 -)`)
  }
  const p = init.routePriority
  if (p !== undefined && (!Number.isInteger(p) || p < 0 || p > 1000)) throw new InvalidConfigError(`--route-priority ${p} is out of range: 0..1000, higher preferred (default 100)`)
  const routes = init.advertiseRoutes ?? []
  if (routes.length === 0 && (init.routeGroup !== undefined || init.gatewayHook !== undefined)) {
    throw new InvalidConfigError(`--${init.routeGroup !== undefined ? 'route-group' : 'gateway-hook'} needs --advertise-route CIDR: a group is made of the nodes that advertise its routes`)
  }
  if (routes.some(r => r === '0.0.0.0/0' || r === '::/0') && init.exitNode !== undefined) {
    throw new InvalidConfigError('--exit-node and an advertised default route (0.0.0.0/0, ::/0) together: an exit node sends its own traffic out directly; drop one of them')
  }
  const h = init.gatewayHook
  if (h !== undefined) {
    if (!h.startsWith('/')) throw new InvalidConfigError(`--gateway-hook '${h}' must be an absolute path to an executable`)
    try { accessSync(h, fsConstants.X_OK) } catch { throw new InvalidConfigError(`--gateway-hook ${h} is not an executable file: create it and chmod +x it`) }
  }
}

/**
 * `--backend existing`: the interface belongs to someone else, with its own private key; the
 * key it really has is the one to advertise. Fails clearly when there is no such interface or
 * it has no key.
 */
export async function existingInterfaceKey (wg: { show: () => Promise<{ interface: { publicKey?: string } }> }, ifname: string): Promise<string> {
  const dump = await wg.show().catch(() => undefined)
  if (dump === undefined) throw new InvalidConfigError(`interface ${ifname} does not exist: --backend existing only manages the peers and addresses of an interface someone else created; create it first, or use --backend auto`)
  const key = dump.interface.publicKey
  if (key === undefined) throw new InvalidConfigError(`interface ${ifname} has no private key set; set one (wg set … private-key …) or use --backend auto`)
  return key
}
