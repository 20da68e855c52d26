/**
 * From the membership table to the WireGuard state this host should have. Pure.
 * One peer per member that is not left and not in conflict; dead members stay configured
 * (their tunnels may still work: the agent is not in the data path).
 */
import { formatCidr, parseEndpoint, type Cidr } from './ip.js'
import type { Membership } from './membership.js'
import type { DesiredPeer, DesiredWireGuard, NodeRecord } from './types.js'

/** Per-peer routing decided by the path tracker (see paths.ts). */
export interface PeerRoute {
  /** Endpoint to configure; undefined = leave WireGuard's. */
  endpoint?: string
  keepaliveS: number
  /** Keep WireGuard on `endpoint` even when it roams away (punching). */
  pin?: boolean
  /** nodeId of the relay whose port `endpoint` is (it copies the pair's ciphertext); undefined = direct. */
  via?: string
  /** First contact not made yet: re-create the peer entry when this changes (see DesiredPeer.kick). */
  kick?: number
}

export interface PlanInput {
  interface: string
  privateKeyFile: string
  mtu: number
  keepaliveS: number
  cidr4: Cidr
  ula: Cidr
  self: NodeRecord
  /** Routing per peer nodeId; peers without an entry get their first endpoint, direct. */
  routes?: ReadonlyMap<string, PeerRoute>
  /** Advertised subnets per peer nodeId: the active gateway of each group gets its group's routes (gateway.ts). */
  extraAllowedIps?: ReadonlyMap<string, string[]>
  /** fwmark for WireGuard's own packets (exit-node policy routing); 0 = off. */
  fwmark?: number
}

/**
 * The endpoint to give WireGuard for `peer`: its first well-formed candidate.
 * (NAT traversal will choose among candidates; this is the seam where it plugs in.)
 */
export function chooseEndpoint (peer: NodeRecord): string | undefined {
  for (const e of peer.endpoints) if (parseEndpoint(e) !== undefined) return e
  return undefined
}

export function planPeers (table: Membership, input: PlanInput): DesiredPeer[] {
  const peers = new Map<string, DesiredPeer>()
  for (const m of table.active()) {
    const r = m.record
    if (r.nodeId === input.self.nodeId || m.conflict !== undefined) continue
    if (r.wgPublicKey === input.self.wgPublicKey) continue
    const route = input.routes?.get(r.nodeId)
    // a peer's addresses always belong to its own entry: a relay only copies ciphertext
    const extra = input.extraAllowedIps?.get(r.nodeId) ?? []
    const p: DesiredPeer = { publicKey: r.wgPublicKey, allowedIps: [`${r.ipv4}/32`, `${r.ipv6}/128`, ...extra].sort() }
    const ep = route === undefined ? chooseEndpoint(r) : route.endpoint
    if (ep !== undefined) p.endpoint = ep
    if (ep !== undefined && route?.pin === true) p.pinEndpoint = true
    if (route?.kick !== undefined) p.kick = route.kick
    const keepalive = route?.keepaliveS ?? input.keepaliveS
    if (keepalive > 0) p.persistentKeepalive = keepalive
    peers.set(p.publicKey, p)
  }
  return [...peers.values()].sort((a, b) => (a.publicKey < b.publicKey ? -1 : a.publicKey > b.publicKey ? 1 : 0))
}

export function planWireGuardState (table: Membership, input: PlanInput): DesiredWireGuard {
  return {
    interface: input.interface,
    privateKeyFile: input.privateKeyFile,
    listenPort: input.self.wgPort,
    addresses: [`${input.self.ipv4}/${input.cidr4.prefix}`, `${input.self.ipv6}/${input.ula.prefix}`],
    mtu: input.mtu,
    peers: planPeers(table, input),
    ...(input.fwmark === undefined ? {} : { fwmark: input.fwmark })
  }
}

/** The interface routes implied by the addresses (documented for operators; `ip addr` adds them). */
export function meshRoutes (input: Pick<PlanInput, 'cidr4' | 'ula'>): string[] {
  return [formatCidr(input.cidr4), formatCidr(input.ula)]
}
