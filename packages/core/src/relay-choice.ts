/**
 * Which relay carries the traffic of a pair that cannot reach each other directly, and where
 * each end reaches it. Pure.
 *
 * Both ends must pick the same relay (each must accept the other's addresses from it), so the
 * choice depends only on the shared membership view: among alive, relay-willing members other
 * than the two that can reach each end over a family that end has, the lowest hash of (pair,
 * relay). The hash spreads pairs over relays instead of piling every pair onto one.
 *
 * Families (issue 11): a relay's ports take both families (relay-server.ts), so one relay can
 * join a host that has only IPv6 to one that has only IPv4. What a record tells about a family:
 *   - an end has the families of its advertised endpoints (IPv6: global ones only);
 *   - a relay serves IPv4 when it advertises an IPv4 endpoint and its `nat` is `public` (the
 *     record's one `nat` field is IPv4's wherever IPv4 was classified);
 *   - a relay serves IPv6 when it advertises a global IPv6 endpoint and has been classified at
 *     all: global IPv6 addresses are not translated, so a relay whose IPv4 is behind a NAT (nat
 *     `cone`/`symmetric`) but that relays anyway (`--relay auto` does only when its IPv6 probes
 *     found it public) serves IPv6 legs. A relay that does not carry after all (a stateful
 *     IPv6 firewall in front of it) is passed over by both ends after the set-up time, as any
 *     silent relay is (path-manager.ts).
 * A pair whose ends share no family (both advertise endpoints, of different families) has no
 * direct path at all: it is relayed at once, whatever the ends' NAT types.
 */
import { createHash } from 'node:crypto'
import { certRoles } from './cert.js'
import { parseEndpoint, type Family } from './ip.js'
import { isGlobalV6 } from './underlay.js'
import type { NodeRecord } from './types.js'

const NONE: ReadonlySet<Family> = new Set()

/** The families of a record's advertised endpoints: IPv4, and IPv6 when global (2000::/3). */
export function endpointFamilies (r: NodeRecord): Set<Family> {
  const out = new Set<Family>()
  for (const e of r.endpoints) {
    const p = parseEndpoint(e)
    if (p !== undefined && (p.family === 4 || isGlobalV6(p.host))) out.add(p.family)
  }
  return out
}

/**
 * The families over which a member relays for others: none unless it says it relays, is not
 * leaving and, in certificate mode (the record carries a certificate, which the table
 * verified), its certificate grants the `relay` role. See the file comment for each family.
 */
export function relayFamilies (r: NodeRecord): ReadonlySet<Family> {
  if (r.relay !== true || r.leaving === true || (r.cert !== undefined && !certRoles(r.cert).includes('relay'))) return NONE
  if (r.nat === undefined || r.nat === 'unknown') return NONE
  const has = endpointFamilies(r)
  const out = new Set<Family>()
  if (has.has(4) && r.nat === 'public') out.add(4)
  if (has.has(6)) out.add(6)
  return out
}

/** A member others may relay through (over at least one family). */
export function relayEligible (r: NodeRecord): boolean {
  return relayFamilies(r).size > 0
}

/**
 * Two records that both advertise endpoints, of no family in common: no direct path can form
 * between them (each is only tried at endpoints of its own families). Symmetric.
 */
export function noCommonFamily (a: NodeRecord, b: NodeRecord): boolean {
  const fa = endpointFamilies(a)
  const fb = endpointFamilies(b)
  return fa.size > 0 && fb.size > 0 && ![...fa].some(f => fb.has(f))
}

/** One end of a pair: its node id (families unknown: any), or its record. */
export type PairEnd = string | NodeRecord

/** Whether `relay` can reach an end with these families (empty: unknown, any). */
function serves (relay: ReadonlySet<Family>, end: ReadonlySet<Family>): boolean {
  return end.size === 0 ? relay.size > 0 : [...end].some(f => relay.has(f))
}

/**
 * The relay for the pair {a, b}: the same for both ends, whatever the order of the ends and of
 * `candidates` (a deterministic function of the records). Given as records, an end counts its
 * advertised families: a relay must serve one family of each end.
 */
export function chooseRelay (a: PairEnd, b: PairEnd, candidates: Iterable<NodeRecord>): NodeRecord | undefined {
  const [ida, idb] = [typeof a === 'string' ? a : a.nodeId, typeof b === 'string' ? b : b.nodeId]
  const fa = typeof a === 'string' ? NONE : endpointFamilies(a)
  const fb = typeof b === 'string' ? NONE : endpointFamilies(b)
  const [x, y] = ida < idb ? [ida, idb] : [idb, ida]
  let best: NodeRecord | undefined
  let bestKey = ''
  for (const r of candidates) {
    if (r.nodeId === ida || r.nodeId === idb) continue
    const rf = relayFamilies(r)
    if (!serves(rf, fa) || !serves(rf, fb)) continue
    const key = createHash('sha256').update(`${x}\0${y}\0${r.nodeId}`).digest('hex')
    // equal keys only for one node id twice: the lower seq's record loses, whatever the order
    if (best === undefined || key < bestKey || (key === bestKey && r.seq > best.seq)) { best = r; bestKey = key }
  }
  return best
}

/**
 * Where an end reaches `relay`: its address in a family the relay serves and the end has
 * (`families`, the end's own underlay families; empty: any). WireGuard's current endpoint for
 * the relay (`wgEndpoint`, where the tunnel to it works) is preferred when it is one of the
 * relay's advertised addresses; else the relay's first advertised endpoint of such a family
 * (IPv4 before IPv6, as it advertises them). Undefined when no family fits.
 */
export function relayLegHost (relay: NodeRecord, families: ReadonlySet<Family>, wgEndpoint?: string): string | undefined {
  const served = relayFamilies(relay)
  const usable = (f: Family): boolean => served.has(f) && (families.size === 0 || families.has(f))
  const advertised = relay.endpoints.map(e => parseEndpoint(e)).filter(e => e !== undefined && (e.family === 4 || isGlobalV6(e.host)))
  const wg = wgEndpoint === undefined ? undefined : parseEndpoint(wgEndpoint)
  if (wg !== undefined && usable(wg.family) && advertised.some(e => e!.host === wg.host)) return wg.host
  return advertised.find(e => usable(e!.family))?.host
}

/**
 * A datagram source as a dual-stack socket reports it, with an IPv4 peer's v4-mapped form
 * ("::ffff:198.18.1.3", any case) turned back into the IPv4 text the records carry.
 */
export function unmapV4 (addr: string): string {
  return addr.length > 7 && addr.includes('.') && addr.slice(0, 7).toLowerCase() === '::ffff:' ? addr.slice(7) : addr
}
