/**
 * The underlay's two families, in one place: which IPv6 addresses may be advertised to other
 * members (global unicast only — a ULA or link-local address means nothing off its site or
 * link, and a link-local one cannot even be dialed without its zone), where the gossip listener
 * binds for a `--gossip-host`, and which candidates this host can send to at all (a host with
 * no IPv4 address cannot reach an IPv4 endpoint: trying one costs a 5 s punching slot). Pure.
 */
import { cidrContainsText, formatIPv4, formatIPv6, parseCidr, parseEndpoint, parseIPv4, parseIPv6, type Family } from './ip.js'

export type V6Scope = 'global' | 'ula' | 'link-local' | 'loopback' | 'unspecified' | 'multicast' | 'other'

const GLOBAL_UNICAST = parseCidr('2000::/3')
const ULA = parseCidr('fc00::/7')
const LINK_LOCAL = parseCidr('fe80::/10')
const MULTICAST = parseCidr('ff00::/8')

/** The scope of an IPv6 address text (undefined: not an IPv6 address). */
export function v6Scope (addr: string): V6Scope | undefined {
  const v = parseIPv6(addr)
  if (v === undefined) return undefined
  if (v === 0n) return 'unspecified'
  if (v === 1n) return 'loopback'
  if (cidrContainsText(GLOBAL_UNICAST, addr)) return 'global'
  if (cidrContainsText(ULA, addr)) return 'ula'
  if (cidrContainsText(LINK_LOCAL, addr)) return 'link-local'
  if (cidrContainsText(MULTICAST, addr)) return 'multicast'
  return 'other'
}

/** Whether `addr` is a global unicast IPv6 address (2000::/3; the documentation prefix 2001:db8::/32 included). */
export function isGlobalV6 (addr: string): boolean {
  return v6Scope(addr) === 'global'
}

/** The default `--gossip-host`: every address of both families. */
export const GOSSIP_HOST_ALL = '::'

/**
 * Why `host` cannot be a `--gossip-host`, or undefined when it can: an IPv4 address, or an
 * IPv6 address that needs no zone (not link-local) and is not multicast.
 */
export function gossipHostProblem (host: string): string | undefined {
  if (parseIPv4(host) !== undefined) return undefined
  const scope = v6Scope(host)
  if (scope === undefined) return 'is not an IP address'
  if (scope === 'link-local') return 'is an IPv6 link-local address (it needs a zone, which a listener address cannot carry): use ::, or a global address of this host'
  if (scope === 'multicast') return 'is a multicast address'
  return undefined
}

/**
 * The gossip listener's multiaddrs for a `--gossip-host` (undefined = default): `::` (the
 * default) listens on every address of both families, one socket each (`0.0.0.0` and `::`,
 * the IPv6 one IPv6-only); `0.0.0.0` on every IPv4 address only; any other address on itself.
 */
export function gossipListenAddrs (host: string | undefined, port: number): string[] {
  const h = host ?? GOSSIP_HOST_ALL
  const v4 = parseIPv4(h)
  if (v4 !== undefined) return [`/ip4/${formatIPv4(v4)}/tcp/${port}`]
  const v6 = parseIPv6(h)
  if (v6 === undefined) throw new RangeError(`gossip host '${h}' is not an IP address`)
  if (v6 === 0n) return [`/ip4/0.0.0.0/tcp/${port}`, `/ip6/::/tcp/${port}`]
  return [`/ip6/${formatIPv6(v6)}/tcp/${port}`]
}

/** Whether a gossip listener on `host` is loopback only (then loopback addresses are advertised: tests). */
export function isLoopbackHost (host: string | undefined): boolean {
  return host !== undefined && (host.startsWith('127.') || v6Scope(host) === 'loopback')
}

/** Whether a gossip multiaddr is an IPv6 link-local one (never advertised, never dialable without a zone). */
export function isLinkLocalGossipAddr (addr: string): boolean {
  const m = /^\/ip6\/([^/]+)\//.exec(addr)
  return m !== null && v6Scope(m[1]!) === 'link-local'
}

/** The family of an endpoint ("1.2.3.4:5" → 4, "[2001:db8::1]:5" → 6), undefined when it is not one. */
export function endpointFamily (endpoint: string | undefined): Family | undefined {
  return endpoint === undefined ? undefined : parseEndpoint(endpoint)?.family
}
