/**
 * Endpoint candidates from this host's interfaces: every non-loopback, non-link-local unicast
 * address that is not on the mesh interface or inside the overlay ranges.
 */
import { networkInterfaces } from 'node:os'
import { cidrContainsText, formatEndpoint, tryParseCidr, type Cidr } from '@wgmesh/core'

export interface LocalAddress { iface: string, address: string, family: 4 | 6, subnet?: Cidr }

export function localAddresses (exclude: { iface: string, ranges: Cidr[] }): LocalAddress[] {
  const out: LocalAddress[] = []
  for (const [name, addrs] of Object.entries(networkInterfaces())) {
    if (name === exclude.iface || addrs === undefined) continue
    for (const a of addrs) {
      if (a.internal) continue
      if (a.family === 'IPv6' && (a.address.startsWith('fe80:') || a.scopeid !== 0)) continue
      if (exclude.ranges.some(r => cidrContainsText(r, a.address))) continue
      const subnet = a.cidr === null ? undefined : tryParseCidr(a.cidr)
      out.push({ iface: name, address: a.address, family: a.family === 'IPv4' ? 4 : 6, ...(subnet === undefined ? {} : { subnet }) })
    }
  }
  // IPv4 first: most underlays route it, and it is what NATs map.
  return out.sort((x, y) => x.family - y.family)
}

export function endpointCandidates (addrs: LocalAddress[], port: number, advertised: string[] = []): string[] {
  const out = [...advertised]
  for (const a of addrs) {
    const e = formatEndpoint(a.address, port)
    if (!out.includes(e)) out.push(e)
  }
  return out.slice(0, 16)
}
