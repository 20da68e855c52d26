/**
 * Text canonicalization of IPs and CIDRs, so desired and observed state compare equal
 * whatever spelling each side used ("FD00:0::1" vs "fd00::1"). Parsing is core's.
 */
import { bitsOf, formatIP, parseIP } from '@wgmesh/core'

/** Canonical text of an IP; the input lowercased if it does not parse. */
export function canonicalIp (s: string): string {
  const ip = parseIP(s)
  return ip === undefined ? s.toLowerCase() : formatIP(ip.family, ip.value)
}

/**
 * Canonical "ip/plen". A missing prefix length means a host route (/32, /128).
 * With `mask`, host bits are cleared, as the kernel does for WireGuard allowed-ips
 * ("10.1.2.3/24" → "10.1.2.0/24"); without, the address is kept (interface addresses).
 * Unparseable input comes back lowercased, unchanged otherwise.
 */
export function canonicalCidr (s: string, mask: boolean): string {
  const slash = s.indexOf('/')
  const ip = parseIP(slash === -1 ? s : s.slice(0, slash))
  if (ip === undefined) return s.toLowerCase()
  const bits = bitsOf(ip.family)
  const plenText = slash === -1 ? String(bits) : s.slice(slash + 1)
  if (!/^\d{1,3}$/.test(plenText) || Number(plenText) > bits) return s.toLowerCase()
  const plen = Number(plenText)
  const value = mask ? ip.value & ~((1n << BigInt(bits - plen)) - 1n) : ip.value
  return `${formatIP(ip.family, value)}/${plen}`
}

/** True for IPv6 link-local fe80::/10. */
export function isLinkLocalV6 (ip: string): boolean {
  const p = parseIP(ip.split('/')[0] ?? '')
  return p !== undefined && p.family === 6 && (p.value >> 118n) === 0x3fan
}
