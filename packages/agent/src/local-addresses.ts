/**
 * Endpoint candidates from this host's interfaces: every non-loopback IPv4 address and every
 * global IPv6 address (2000::/3: a ULA or link-local address means nothing to a member off this
 * site or link) that is not on the mesh interface or inside the overlay ranges.
 */
import { networkInterfaces } from 'node:os'
import { cidrContainsText, formatEndpoint, isGlobalV6, tryParseCidr, type Cidr, type Family } from '@wgmesh/core'

export interface LocalAddress { iface: string, address: string, family: 4 | 6, subnet?: Cidr }

type Interfaces = ReturnType<typeof networkInterfaces>

export function localAddresses (exclude: { iface: string, ranges: Cidr[] }, interfaces: Interfaces = networkInterfaces()): LocalAddress[] {
  const out: LocalAddress[] = []
  for (const [name, addrs] of Object.entries(interfaces)) {
    if (name === exclude.iface || addrs === undefined) continue
    for (const a of addrs) {
      if (a.internal) continue
      if (a.family === 'IPv6' && (!isGlobalV6(a.address) || a.scopeid !== 0)) continue
      if (exclude.ranges.some(r => cidrContainsText(r, a.address))) continue
      const subnet = a.cidr === null ? undefined : tryParseCidr(a.cidr)
      out.push({ iface: name, address: a.address, family: a.family === 'IPv4' ? 4 : 6, ...(subnet === undefined ? {} : { subnet }) })
    }
  }
  // IPv4 first: most underlays route it, and it is what NATs map.
  return out.sort((x, y) => x.family - y.family)
}

/** The families this host has an underlay address of (what it can send to at all). */
export function underlayFamilies (addrs: LocalAddress[]): Set<Family> {
  return new Set(addrs.map(a => a.family))
}

export function endpointCandidates (addrs: LocalAddress[], port: number, advertised: string[] = []): string[] {
  const out = [...advertised]
  for (const a of addrs) {
    const e = formatEndpoint(a.address, port)
    if (!out.includes(e)) out.push(e)
  }
  return out.slice(0, 16)
}
