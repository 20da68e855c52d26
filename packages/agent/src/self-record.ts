/**
 * Building this node's own record. Pure: everything comes in as arguments.
 */
import { isLinkLocalGossipAddr, type NodeRecord } from '@wgmesh/core'

export interface SelfIdentity {
  nodeId: string
  name: string
  wgPublicKey: string
  wgPort: number
  tags: string[]
  relay: boolean
  /** UDP port of the failure detector's probe socket. */
  probePort?: number
  /** Certificate mode: this node's certificate token. */
  cert?: string
}

export interface SelfAddressing { ipv4: string, ipv6: string, ipSalt: number, ipSince: number }

export function buildSelfRecord (id: SelfIdentity, addr: SelfAddressing, seq: number, now: number,
  endpoints: string[], gossipAddrs: string[], leaving = false): NodeRecord {
  const r: NodeRecord = {
    v: 1,
    nodeId: id.nodeId,
    seq,
    issuedAt: now,
    name: id.name,
    wgPublicKey: id.wgPublicKey,
    ipv4: addr.ipv4,
    ipv6: addr.ipv6,
    ipSince: addr.ipSince,
    ipSalt: addr.ipSalt,
    wgPort: id.wgPort,
    endpoints,
    gossipAddrs,
    routes: [],
    tags: id.tags
  }
  if (id.relay) r.relay = true
  if (id.probePort !== undefined) r.probePort = id.probePort
  if (id.cert !== undefined) r.cert = id.cert
  if (leaving) r.leaving = true
  return r
}

/** Next seq: above the last one and the persisted floor; wall-clock based so a restart without state still moves forward. */
export function nextSeq (last: number, now: number): number {
  return Math.max(last + 1, now)
}

/** The libp2p peer id inside a `/p2p/<id>` multiaddr suffix, if any. */
export function peerIdOf (addr: string): string | undefined {
  const i = addr.lastIndexOf('/p2p/')
  return i < 0 ? undefined : addr.slice(i + 5)
}

/**
 * The gossip addresses to advertise: loopback only when we listen on loopback (tests), never an
 * IPv6 link-local one (undialable without its zone), the underlay first — IPv4, then IPv6 —,
 * our overlay addresses last (gossip also runs inside the mesh), at most 8.
 */
export function orderGossipAddrs (all: string[], loopbackOnly: boolean, self: { ipv4: string, ipv6: string }): string[] {
  const overlay = (a: string): boolean => a.includes(`/ip4/${self.ipv4}/`) || a.includes(`/ip6/${self.ipv6}/`)
  const usable = all.filter(a => !isLinkLocalGossipAddr(a) && (loopbackOnly || !(a.includes('/ip4/127.') || a.includes('/ip6/::1/'))))
  const underlay = usable.filter(a => !overlay(a))
  const v6 = (a: string): boolean => a.startsWith('/ip6/')
  return [...underlay.filter(a => !v6(a)), ...underlay.filter(v6), ...usable.filter(overlay)].slice(0, 8)
}

/** Whether two own records say the same (seq and issue time aside): if so, nothing to publish. */
export function sameContent (a: NodeRecord, b: NodeRecord): boolean {
  return JSON.stringify({ ...a, seq: 0, issuedAt: 0 }) === JSON.stringify({ ...b, seq: 0, issuedAt: 0 })
}
