/**
 * Parsers of `ip -o addr show dev <if>` and `ip -o link show dev <if>` (pure).
 *
 *   5: wg0    inet 100.96.3.4/16 scope global wg0\       valid_lft forever preferred_lft forever
 *   5: wg0    inet6 fd00::5/48 scope global \       valid_lft forever preferred_lft forever
 *   5: wg0: <POINTOPOINT,NOARP,UP,LOWER_UP> mtu 1420 qdisc noqueue state UNKNOWN mode DEFAULT group default qlen 1000\    link/none
 */
import { isLinkLocalV6 } from './cidr.js'
import { IpOutputParseError } from './errors.js'

/**
 * The interface's global addresses as "addr/plen", in output order. IPv6 link-local
 * (fe80::/10) is skipped. An address printed without a prefix length gets /32 or /128.
 */
export function parseAddrShow (text: string): string[] {
  const out: string[] = []
  for (const line of text.split('\n')) {
    const tokens = line.trim().split(/\s+/)
    const i = tokens.findIndex(t => t === 'inet' || t === 'inet6')
    if (i === -1) continue
    const family = tokens[i]
    let addr = tokens[i + 1]
    if (addr === undefined || addr === '') throw new IpOutputParseError(`ip addr: no address after '${family ?? ''}' in ${JSON.stringify(line)}`)
    if (!addr.includes('/')) addr += family === 'inet' ? '/32' : '/128'
    if (family === 'inet6' && isLinkLocalV6(addr)) continue
    out.push(addr)
  }
  return out
}

export interface LinkInfo {
  /** Interface name ("wg0"; an "@peer" suffix is dropped). */
  name: string
  /** The flags between angle brackets, e.g. ["POINTOPOINT", "NOARP", "UP", "LOWER_UP"]. */
  flags: string[]
  mtu: number
  /** Administratively up (the UP flag). WireGuard links report operstate UNKNOWN even when up. */
  up: boolean
  /** The `state` field: "UP", "DOWN", "UNKNOWN", ... */
  operState: string
}

/** Parses the first line of `ip -o link show dev <if>`. Throws {@link IpOutputParseError} if it is not a link line. */
export function parseLinkShow (text: string): LinkInfo {
  const line = text.split('\n').find(l => l.trim() !== '')
  const m = line?.match(/^\s*\d+:\s+([^:\s]+):\s+<([^>]*)>(.*)$/)
  if (line === undefined || m == null) throw new IpOutputParseError(`ip link: not a link line: ${JSON.stringify(line ?? '')}`)
  const name = (m[1] ?? '').split('@')[0] ?? ''
  const flags = (m[2] ?? '').split(',').filter(s => s !== '')
  const rest = m[3] ?? ''
  const mtu = rest.match(/\bmtu\s+(\d+)/)
  if (mtu == null) throw new IpOutputParseError(`ip link: no mtu in ${JSON.stringify(line)}`)
  const state = rest.match(/\bstate\s+(\S+)/)
  return { name, flags, mtu: Number(mtu[1]), up: flags.includes('UP'), operState: state?.[1] ?? 'UNKNOWN' }
}
