/**
 * Minimal, dependency-free IPv4/IPv6 parsing and CIDR arithmetic on bigint.
 * Only what wgmesh needs: canonical text forms, containment, offset addressing.
 */
import { InvalidAddressError } from './errors.js'

export type Family = 4 | 6

export interface Cidr {
  family: Family
  /** Network address (host bits cleared). */
  base: bigint
  prefix: number
}

const V4_BITS = 32
const V6_BITS = 128

export function bitsOf (family: Family): number {
  return family === 4 ? V4_BITS : V6_BITS
}

export function parseIPv4 (s: string): bigint | undefined {
  const parts = s.split('.')
  if (parts.length !== 4) return undefined
  let v = 0n
  for (const p of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return undefined
    const n = Number(p)
    if (n > 255) return undefined
    v = (v << 8n) | BigInt(n)
  }
  return v
}

export function parseIPv6 (s: string): bigint | undefined {
  if (s.length === 0 || s.length > 45 || !/^[0-9a-fA-F:.]+$/.test(s)) return undefined
  const halves = s.split('::')
  if (halves.length > 2) return undefined
  const parse = (h: string): number[] | undefined => {
    if (h === '') return []
    const groups = h.split(':')
    const out: number[] = []
    for (const [i, g] of groups.entries()) {
      if (i === groups.length - 1 && g.includes('.')) { // embedded IPv4 (::ffff:192.0.2.1)
        const v4 = parseIPv4(g)
        if (v4 === undefined) return undefined
        out.push(Number(v4 >> 16n), Number(v4 & 0xffffn))
        continue
      }
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined
      out.push(parseInt(g, 16))
    }
    return out
  }
  const head = parse(halves[0] ?? '')
  const tail = halves.length === 2 ? parse(halves[1] ?? '') : []
  if (head === undefined || tail === undefined) return undefined
  let groups: number[]
  if (halves.length === 2) {
    const fill = 8 - head.length - tail.length
    if (fill < 1) return undefined
    groups = [...head, ...new Array<number>(fill).fill(0), ...tail]
  } else {
    if (head.length !== 8) return undefined
    groups = head
  }
  let v = 0n
  for (const g of groups) v = (v << 16n) | BigInt(g)
  return v
}

export function parseIP (s: string): { family: Family, value: bigint } | undefined {
  const v4 = parseIPv4(s)
  if (v4 !== undefined) return { family: 4, value: v4 }
  const v6 = parseIPv6(s)
  if (v6 !== undefined) return { family: 6, value: v6 }
  return undefined
}

export function formatIPv4 (v: bigint): string {
  return [24n, 16n, 8n, 0n].map(sh => ((v >> sh) & 0xffn).toString()).join('.')
}

/** RFC 5952 canonical form (lowercase, longest zero run compressed). */
export function formatIPv6 (v: bigint): string {
  const groups: number[] = []
  for (let i = 7; i >= 0; i--) groups.push(Number((v >> BigInt(i * 16)) & 0xffffn))
  let bestStart = -1
  let bestLen = 1
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) { i++; continue }
    let j = i
    while (j < 8 && groups[j] === 0) j++
    if (j - i > bestLen) { bestStart = i; bestLen = j - i }
    i = j
  }
  const hex = groups.map(g => g.toString(16))
  if (bestStart < 0) return hex.join(':')
  const left = hex.slice(0, bestStart).join(':')
  const right = hex.slice(bestStart + bestLen).join(':')
  return `${left}::${right}`
}

export function formatIP (family: Family, v: bigint): string {
  return family === 4 ? formatIPv4(v) : formatIPv6(v)
}

export function parseCidr (s: string): Cidr {
  const slash = s.indexOf('/')
  if (slash < 0) throw new InvalidAddressError(`'${s}' is not a CIDR (want address/prefix)`)
  const ip = parseIP(s.slice(0, slash))
  const plen = s.slice(slash + 1)
  if (ip === undefined) throw new InvalidAddressError(`'${s}': bad address`)
  if (!/^[0-9]{1,3}$/.test(plen)) throw new InvalidAddressError(`'${s}': bad prefix length`)
  const prefix = Number(plen)
  const bits = bitsOf(ip.family)
  if (prefix > bits) throw new InvalidAddressError(`'${s}': prefix longer than ${bits}`)
  const hostMask = (1n << BigInt(bits - prefix)) - 1n
  return { family: ip.family, base: ip.value & ~hostMask, prefix }
}

export function tryParseCidr (s: string): Cidr | undefined {
  try { return parseCidr(s) } catch { return undefined }
}

export function formatCidr (c: Cidr): string {
  return `${formatIP(c.family, c.base)}/${c.prefix}`
}

export function cidrSize (c: Cidr): bigint {
  return 1n << BigInt(bitsOf(c.family) - c.prefix)
}

export function cidrContains (c: Cidr, family: Family, v: bigint): boolean {
  if (family !== c.family) return false
  const hostMask = (1n << BigInt(bitsOf(family) - c.prefix)) - 1n
  return (v & ~hostMask) === c.base
}

/** Whether text address `ip` lies inside `c`. */
export function cidrContainsText (c: Cidr, ip: string): boolean {
  const p = parseIP(ip)
  return p !== undefined && cidrContains(c, p.family, p.value)
}

/** Canonical text of an address ("100.96.0.1", "fd00::1"), or undefined if it is not one. */
export function canonicalIP (s: string): string | undefined {
  const p = parseIP(s)
  return p === undefined ? undefined : formatIP(p.family, p.value)
}

/** A parsed "host:port" endpoint (shared: {@link parseEndpoint} hands out the same object for the same text). */
export type Endpoint = Readonly<{ host: string, port: number, family: Family }>

/** Parsed endpoints by their text; cleared when full (records carry a few endpoints each). */
const endpointMemo = new Map<string, Endpoint | null>()
const ENDPOINT_MEMO_MAX = 2048

/**
 * "ip4:port" or "[ip6]:port" → host (canonical text), port, family; undefined if it is not one.
 * Memoized: the path manager parses every member's endpoints every tick, and the agent's
 * JavaScript runs in V8's interpreter (scripts/bundle.mjs), where the address parsing and
 * formatting (BigInt) was a tenth of an idle agent's CPU at 50 members, and much of its garbage.
 */
export function parseEndpoint (s: string): Endpoint | undefined {
  const hit = endpointMemo.get(s)
  if (hit !== undefined) return hit ?? undefined
  const e = parseEndpointText(s)
  if (s.length <= 64) {
    if (endpointMemo.size >= ENDPOINT_MEMO_MAX) endpointMemo.clear()
    endpointMemo.set(s, e === undefined ? null : Object.freeze(e))
  }
  return e
}

function parseEndpointText (s: string): { host: string, port: number, family: Family } | undefined {
  let host: string
  let port: string
  // the documented forms only: "ip4:port" and "[ip6]:port" (an unbracketed IPv6 text is
  // ambiguous: "fd00::1:51820" is itself an address)
  if (s.startsWith('[')) {
    const end = s.indexOf(']:')
    if (end < 0) return undefined
    host = s.slice(1, end)
    port = s.slice(end + 2)
    if (!host.includes(':')) return undefined
  } else {
    const i = s.lastIndexOf(':')
    if (i < 0) return undefined
    host = s.slice(0, i)
    port = s.slice(i + 1)
    if (host.includes(':')) return undefined
  }
  if (!/^[0-9]{1,5}$/.test(port)) return undefined
  const n = Number(port)
  if (n < 1 || n > 65535) return undefined
  const ip = parseIP(host)
  if (ip === undefined) return undefined
  return { host: formatIP(ip.family, ip.value), port: n, family: ip.family }
}

export function formatEndpoint (host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`
}
