/**
 * NAT type from STUN answers gathered on one socket. Pure.
 *
 * - `public`: every server saw one of our own addresses and our own port: no NAT.
 * - `cone`: ≥2 servers saw the same address:port: endpoint-independent mapping; a peer that
 *   learns it can reach us there (after we punch), so direct paths work.
 * - `symmetric`: servers saw different ports or addresses: the mapping depends on the
 *   destination; what one peer learns is useless to another. Direct only if the other side is
 *   public/cone and punching lands; else relay.
 * - `unknown`: fewer than 2 servers answered (and the one answer was not our own address).
 * - `firewalled` (from {@link withFiltering}): servers saw our own address and port, but an
 *   answer from a server's other port never arrived (change-port probe): a stateful firewall
 *   that lets in only replies — IPv6's "NAT". Like a cone NAT for traversal: a peer reaches us
 *   once we sent to it, so both ends punch at once and keep the path warm with keepalives.
 * A server on our own LAN (behind the same NAT) sees our private address: when other servers
 * saw a translated one, such answers say nothing about the NAT and are left out (mixed with a
 * public server's answer they would look like a destination-dependent mapping).
 */
import { canonicalIP, formatEndpoint } from '@wgmesh/core'

export type NatType = 'public' | 'cone' | 'symmetric' | 'unknown' | 'firewalled'

/**
 * The NAT types a record carries. Agents before `firewalled` existed refuse a record whose
 * `nat` they do not know, so a firewalled host says `cone` ({@link recordNatType}) — which is
 * also what it is to the traversal: not reachable unasked, reachable where it sent (it punches
 * and sends keepalives, it may be relayed, it never relays for others).
 */
export type RecordNatType = Exclude<NatType, 'firewalled'>

/** The type a record says for `t`: `firewalled` → `cone`. */
export function recordNatType (t: NatType): RecordNatType {
  return t === 'firewalled' ? 'cone' : t
}

/**
 * What a change-port probe found (probeFiltering in stun-client.ts): `open` — an answer came
 * from another port of the server (a packet nobody asked for got in: no stateful firewall on
 * the way); `filtered` — the server answered a plain request moments ago but its other port's
 * answer never arrived (a stateful firewall lets in only replies); `unsupported` — only plain
 * answers, from the port asked (a server that does not honour CHANGE-REQUEST: an older
 * member), or no query could be sent.
 */
export type FilteringResult = 'open' | 'filtered' | 'unsupported'

/**
 * A `public` classification refined by a change-port probe: `filtered` makes it `firewalled`;
 * `open`, or a server that does not honour the request (an older member), leaves it as it is.
 * Any other type is returned unchanged (behind a NAT, the mapping decides).
 */
export function withFiltering (t: NatType, filtering: FilteringResult | undefined): NatType {
  return t === 'public' && filtering === 'filtered' ? 'firewalled' : t
}

/** The part of a STUN mapping classification needs. */
export interface ObservedMapping {
  server: { host: string, port: number }
  address: string
  port: number
}

const canon = (a: string): string => canonicalIP(a) ?? a

export function classifyNat (localAddrs: string[], localPort: number, mappings: ObservedMapping[]): NatType {
  if (mappings.length === 0) return 'unknown'
  const locals = new Set(localAddrs.map(canon))
  if (mappings.every(m => locals.has(canon(m.address)) && m.port === localPort)) return 'public'
  const translated = mappings.filter(m => !(locals.has(canon(m.address)) && m.port === localPort))
  if (translated.length < mappings.length) return classifyNat([], localPort, translated)
  const servers = new Set(mappings.map(m => formatEndpoint(canon(m.server.host), m.server.port)))
  const seen = new Set(mappings.map(m => formatEndpoint(canon(m.address), m.port)))
  // Two different answers prove destination-dependence even if they came from one server
  // (which would be a NAT rebinding mid-probe: treat it as hostile, i.e. symmetric).
  if (seen.size > 1) return 'symmetric'
  if (servers.size < 2) return 'unknown'
  return 'cone'
}

/** Whether the NAT kept our local port (every answer shows `localPort`). False with no answers. */
export function portPreserved (localPort: number, mappings: Array<{ port: number }>): boolean {
  return mappings.length > 0 && mappings.every(m => m.port === localPort)
}

/**
 * A dual-stack host's one NAT type (the record has one `nat` field): IPv4's where IPv4 was
 * classified — what NATs map, and what decides relays and keepalives on IPv4 paths —, else
 * IPv6's (an IPv6-only host, or one whose IPv4 probes found no server).
 */
export function underlayNatType (v4: NatType, v6: NatType): NatType {
  return v4 !== 'unknown' ? v4 : v6
}
