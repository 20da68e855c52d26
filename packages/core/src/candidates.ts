/**
 * Endpoint candidates for reaching a peer, best first. Pure.
 *   1. addresses on one of our own subnets (the LAN: no NAT, no hairpin needed), those found
 *      by LAN discovery first;
 *   2. what other members observe for it in `wg show dump` (the true mapping of its
 *      WireGuard socket, e.g. when its NAT did not keep the port);
 *   3. what it advertises itself: --advertise, a UPnP/NAT-PMP mapping, the STUN-derived
 *      public address with its WireGuard port, then its interface addresses.
 */
import { cidrContainsText, parseEndpoint, type Cidr } from './ip.js'
import type { NodeRecord } from './types.js'

export const SHORT_ID_LEN = 11

export function shortId (nodeId: string): string {
  return nodeId.slice(0, SHORT_ID_LEN)
}

export interface CandidateContext {
  /** Our own subnets (interface address + prefix), to recognise LAN candidates. */
  localSubnets: Cidr[]
  /** Every record we hold (for the `seen` observations of others). */
  records: Iterable<NodeRecord>
  /** LAN discovery: endpoints at which the peer announced itself on one of our LANs. */
  lanDiscovered?: string[]
}

export function isOnLan (endpoint: string, localSubnets: Cidr[]): boolean {
  const e = parseEndpoint(endpoint)
  return e !== undefined && localSubnets.some(c => cidrContainsText(c, e.host))
}

export function peerCandidates (peer: NodeRecord, ctx: CandidateContext): string[] {
  const out: string[] = []
  const add = (e: string | undefined): void => {
    if (e === undefined) return
    const p = parseEndpoint(e)
    if (p === undefined) return
    const canon = p.family === 6 ? `[${p.host}]:${p.port}` : `${p.host}:${p.port}`
    if (!out.includes(canon)) out.push(canon)
  }
  for (const e of ctx.lanDiscovered ?? []) add(e)
  for (const e of peer.endpoints) if (isOnLan(e, ctx.localSubnets)) add(e)
  const sid = shortId(peer.nodeId)
  for (const r of ctx.records) {
    if (r.nodeId === peer.nodeId) continue
    add(r.seen?.[sid])
  }
  for (const e of peer.endpoints) add(e)
  return out
}
