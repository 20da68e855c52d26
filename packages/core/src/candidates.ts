/**
 * Endpoint candidates for reaching a peer, best first. Pure.
 * Only endpoints of a family this host has an underlay address of (`families`).
 *   1. addresses on one of our own subnets (the LAN: no NAT, no hairpin needed), those found
 *      by LAN discovery first;
 *   2. what it advertises itself: --advertise, a UPnP/NAT-PMP mapping, the STUN-derived
 *      public address with its WireGuard port, then its interface addresses;
 *   3. last, what other members observe for it in `wg show dump` (`seen`: the true mapping of
 *      its WireGuard socket, e.g. when its NAT did not keep the port). Any member can claim
 *      anything there, so a claim is taken only when plausible — its host is one the peer
 *      advertises itself (a NAT that did not keep the port keeps the address) — one per
 *      claimer, at most `MAX_SEEN_CANDIDATES`; and it never ranks above the peer's own, so a
 *      claimer changing its claim every heartbeat cannot keep the real endpoint untried.
 */
import { cidrContainsText, parseEndpoint, type Cidr, type Family } from './ip.js'
import type { NodeRecord } from './types.js'

export const SHORT_ID_LEN = 11
/** Observed (`seen`) endpoints tried for a peer, after its own. */
export const MAX_SEEN_CANDIDATES = 4

export function shortId (nodeId: string): string {
  return nodeId.slice(0, SHORT_ID_LEN)
}

export interface CandidateContext {
  /** Our own subnets (interface address + prefix), to recognise LAN candidates. */
  localSubnets: Cidr[]
  /** The `seen` observations in every record we hold, indexed once for all peers ({@link indexSeenClaims}). */
  seen: SeenIndex
  /** LAN discovery: endpoints at which the peer announced itself on one of our LANs. */
  lanDiscovered?: string[]
  /**
   * The families this host has an underlay address of: a candidate of another family cannot
   * work (no source address, no route) and would only cost a 5 s punching slot. Undefined or
   * empty: every family.
   */
  families?: ReadonlySet<Family>
}

export function isOnLan (endpoint: string, localSubnets: Cidr[]): boolean {
  const e = parseEndpoint(endpoint)
  return e !== undefined && localSubnets.some(c => cidrContainsText(c, e.host))
}

/** Members' `seen` claims by the short id they are about, in record order: claimer → endpoint. */
export type SeenIndex = ReadonlyMap<string, ReadonlyArray<{ claimer: string, endpoint: string }>>

/**
 * Indexes the `seen` claims of `records` once, so that the claims about one peer are found
 * without going through every record (candidates for every peer: O(members), not O(members²)).
 */
export function indexSeenClaims (records: Iterable<NodeRecord>): SeenIndex {
  const out = new Map<string, Array<{ claimer: string, endpoint: string }>>()
  for (const r of records) {
    if (r.seen === undefined) continue
    for (const [sid, endpoint] of Object.entries(r.seen)) {
      let l = out.get(sid)
      if (l === undefined) out.set(sid, l = [])
      l.push({ claimer: r.nodeId, endpoint })
    }
  }
  return out
}

/**
 * The observed endpoints claimed for `peer` by other members that are plausible: the host is
 * one of the peer's own advertised hosts. `dropped` counts the implausible ones.
 */
export function seenClaims (peer: NodeRecord, seen: SeenIndex): { plausible: string[], dropped: number } {
  const hosts = new Set(peer.endpoints.flatMap(e => { const p = parseEndpoint(e); return p === undefined ? [] : [p.host] }))
  const sid = shortId(peer.nodeId)
  const plausible: string[] = []
  let dropped = 0
  // one per claimer: `seen` maps a short id to one endpoint
  for (const { claimer, endpoint: claim } of seen.get(sid) ?? []) {
    if (claimer === peer.nodeId) continue
    const p = parseEndpoint(claim)
    if (p === undefined || !hosts.has(p.host)) { dropped++; continue }
    plausible.push(claim)
  }
  return { plausible, dropped }
}

export function peerCandidates (peer: NodeRecord, ctx: CandidateContext): string[] {
  const out: string[] = []
  const add = (e: string | undefined): boolean => {
    if (e === undefined) return false
    const p = parseEndpoint(e)
    if (p === undefined) return false
    if (ctx.families !== undefined && ctx.families.size > 0 && !ctx.families.has(p.family)) return false
    const canon = p.family === 6 ? `[${p.host}]:${p.port}` : `${p.host}:${p.port}`
    if (out.includes(canon)) return false
    out.push(canon)
    return true
  }
  for (const e of ctx.lanDiscovered ?? []) add(e)
  for (const e of peer.endpoints) if (isOnLan(e, ctx.localSubnets)) add(e)
  for (const e of peer.endpoints) add(e)
  let seen = 0
  for (const e of seenClaims(peer, ctx.seen).plausible) {
    if (seen >= MAX_SEEN_CANDIDATES) break
    if (add(e)) seen++
  }
  return out
}
