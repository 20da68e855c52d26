/**
 * Advertised routes: the subnets a node can reach and offers to the mesh (`--advertise-route`).
 * Pure: parse and check an operator's specs, and decide which of the routes that gateway groups
 * advertise may be installed when two groups claim overlapping space.
 *
 * Routes travel in records as canonical CIDR text (network address, lower-case, compressed
 * IPv6), so that equal routes are equal strings on every node and sets of them compare and
 * sort the same everywhere. `0.0.0.0/0` and `::/0` are exit routes: they overlap everything by
 * design, so they are exempt from the overlap checks and installed only where a node opts in.
 */
import { cidrContains, formatCidr, parseCidr, parseIP, tryParseCidr, type Cidr } from './ip.js'
import { MAX_ROUTES } from './record.js'

export type RouteSpecResult = { ok: true, cidr: string, exit: boolean } | { ok: false, error: string }

/** A gateway group member's advertised routes, as input to `resolveRouteConflicts`. */
export interface RouteClaim { nodeId: string, group: string, routes: string[] }

export interface RouteRejection { nodeId: string, cidr: string, reason: 'overlap', with: string }

export interface RouteConflicts {
  /** Every member's routes that may be installed (possibly none), sorted canonical. */
  accepted: Map<string, string[]>
  /** The routes refused because a group whose name sorts first holds overlapping space. */
  rejected: RouteRejection[]
}

const EXAMPLE = 'want e.g. 10.1.0.0/24 or 2001:db8:1::/64'

/**
 * Ranges a route may not touch: their packets never leave a host (loopback), are not routed
 * (link-local) or are not unicast (multicast), so a peer holding them in its AllowedIPs would
 * only swallow traffic.
 */
const RESERVED: Array<{ what: string, range: Cidr }> = [
  { what: 'loopback', range: parseCidr('127.0.0.0/8') },
  { what: 'link-local', range: parseCidr('169.254.0.0/16') },
  { what: 'multicast', range: parseCidr('224.0.0.0/4') },
  { what: 'loopback', range: parseCidr('::1/128') },
  { what: 'link-local', range: parseCidr('fe80::/10') },
  { what: 'multicast', range: parseCidr('ff00::/8') }
]

/** Whether two prefixes share an address: then the shorter one contains the other's base. */
function overlaps (a: Cidr, b: Cidr): boolean {
  if (a.family !== b.family) return false
  return a.prefix <= b.prefix ? cidrContains(a, b.family, b.base) : cidrContains(b, a.family, a.base)
}

/** Whether two CIDRs share any address (different families never do; unparseable: false). */
export function cidrsOverlap (a: string, b: string): boolean {
  const ca = tryParseCidr(a)
  const cb = tryParseCidr(b)
  return ca !== undefined && cb !== undefined && overlaps(ca, cb)
}

/** Whether `cidr` is an exit route (`0.0.0.0/0` or `::/0`). */
export function isExitRoute (cidr: string): boolean {
  return tryParseCidr(cidr)?.prefix === 0
}

/** Route order: IPv4 first, then by network address, then by prefix length. */
export function compareCidrs (a: Cidr, b: Cidr): number {
  if (a.family !== b.family) return a.family - b.family
  if (a.base !== b.base) return a.base < b.base ? -1 : 1
  return a.prefix - b.prefix
}

/**
 * Canonical, deduplicated and sorted (`compareCidrs`) form of a route list. Entries that are
 * not CIDRs are dropped: a record's routes are only checked to parse, and may come from an
 * older or foreign agent in non-canonical text.
 */
export function sortRoutes (list: Iterable<string>): string[] {
  const byText = new Map<string, Cidr>()
  for (const s of list) {
    const c = tryParseCidr(s)
    if (c !== undefined) byText.set(formatCidr(c), c)
  }
  return [...byText.entries()].sort((a, b) => compareCidrs(a[1], b[1])).map(([text]) => text)
}

/**
 * One `--advertise-route` value, checked against the mesh's own ranges (`meshRanges`: the mesh
 * IPv4 CIDR and IPv6 /48; they must parse). An error is one sentence naming the input and what
 * to write instead. Host bits are an error rather than silently cleared: `10.1.0.5/24` is more
 * often a typo for a host route than a request for the whole /24.
 */
export function parseRouteSpec (s: string, meshRanges: string[]): RouteSpecResult {
  const text = s.trim()
  const slash = text.indexOf('/')
  if (slash < 0) {
    const ip = parseIP(text)
    if (ip === undefined) return { ok: false, error: `${text === '' ? "''" : text} is not a CIDR (${EXAMPLE})` }
    const bits = ip.family === 4 ? 32 : 128
    return { ok: false, error: `${text} has no prefix length: write ${text}/${bits} for this one host, or the subnet it is in (${EXAMPLE})` }
  }
  const addr = parseIP(text.slice(0, slash))
  const plen = text.slice(slash + 1)
  if (addr === undefined || !/^[0-9]{1,3}$/.test(plen)) return { ok: false, error: `${text} is not a CIDR (${EXAMPLE})` }
  const bits = addr.family === 4 ? 32 : 128
  if (Number(plen) > bits) {
    return { ok: false, error: `${text} has a prefix length over ${bits}: an IPv${addr.family} prefix is /0 to /${bits}` }
  }
  const c = parseCidr(text)
  const cidr = formatCidr(c)
  if (c.base !== addr.value) return { ok: false, error: `${text} has host bits set: did you mean ${cidr}?` }
  if (c.prefix === 0) return { ok: true, cidr, exit: true }
  for (const m of meshRanges) {
    const mesh = parseCidr(m)
    if (overlaps(c, mesh)) {
      return { ok: false, error: `${text} overlaps the mesh range ${formatCidr(mesh)}: advertise only subnets outside the mesh's own addresses` }
    }
  }
  for (const r of RESERVED) {
    if (overlaps(c, r.range)) {
      return { ok: false, error: `${text} overlaps the ${r.what} range ${formatCidr(r.range)}, which no gateway can route: advertise a subnet outside it` }
    }
  }
  return { ok: true, cidr, exit: false }
}

/**
 * Every `--advertise-route` value of a node: all errors at once (an operator fixes them in one
 * go), else the routes canonical, deduplicated and sorted, at most MAX_ROUTES (what a record
 * carries).
 */
export function parseAdvertisedRoutes (list: string[], meshRanges: string[]): { ok: true, routes: string[] } | { ok: false, errors: string[] } {
  const errors: string[] = []
  const good: string[] = []
  for (const s of list) {
    const r = parseRouteSpec(s, meshRanges)
    if (r.ok) good.push(r.cidr)
    else errors.push(r.error)
  }
  const routes = sortRoutes(good)
  if (routes.length > MAX_ROUTES) {
    errors.push(`${routes.length} routes advertised, at most ${MAX_ROUTES} fit in a record: merge neighbouring subnets into larger ones`)
  }
  return errors.length > 0 ? { ok: false, errors } : { ok: true, routes }
}

const ordinal = (a: string, b: string): number => a < b ? -1 : a > b ? 1 : 0

/**
 * Which advertised routes may be installed. Two different groups must not hold overlapping
 * routes (a packet would go to whichever AllowedIPs entry is more specific, silently splitting
 * a subnet between gateways that do not know of each other). The group whose name sorts first
 * (ordinal: every node must agree, whatever its locale) keeps its routes; a later group's
 * route that overlaps a route already KEPT by an earlier group is rejected — a route that was
 * itself rejected blocks nobody. The member and its other routes stay. Exit routes are exempt,
 * and members of one group may advertise different, overlapping sets: only one of them is
 * active at a time. The result does not depend on the input order.
 */
export function resolveRouteConflicts (members: RouteClaim[]): RouteConflicts {
  const groups = new Map<string, Map<string, Cidr>>()
  for (const m of members) {
    const g = groups.get(m.group) ?? new Map<string, Cidr>()
    groups.set(m.group, g)
    for (const text of sortRoutes(m.routes)) g.set(text, parseCidr(text))
  }
  const kept: Array<{ group: string, c: Cidr }> = []
  /** "group\ncidr" → the group whose kept route it overlaps. */
  const refused = new Map<string, string>()
  for (const group of [...groups.keys()].sort(ordinal)) {
    const mine: Cidr[] = []
    for (const [text, c] of groups.get(group)!) {
      if (c.prefix === 0) continue
      const hit = kept.find(k => overlaps(k.c, c))
      if (hit !== undefined) refused.set(`${group}\n${text}`, hit.group)
      else mine.push(c)
    }
    // added after the loop: a group's own routes never conflict with each other
    for (const c of mine) kept.push({ group, c })
  }
  const accepted = new Map<string, string[]>()
  const rejected: RouteRejection[] = []
  for (const m of [...members].sort((a, b) => ordinal(a.nodeId, b.nodeId) || ordinal(a.group, b.group))) {
    const ok = accepted.get(m.nodeId) ?? []
    for (const cidr of sortRoutes(m.routes)) {
      const by = refused.get(`${m.group}\n${cidr}`)
      if (by === undefined) ok.push(cidr)
      else rejected.push({ nodeId: m.nodeId, cidr, reason: 'overlap', with: by })
    }
    accepted.set(m.nodeId, ok)
  }
  // one entry per nodeId is expected; the sorts keep the result order-free even if not
  for (const [nodeId, ok] of accepted) accepted.set(nodeId, sortRoutes(ok))
  rejected.sort((a, b) => ordinal(a.nodeId, b.nodeId) || compareCidrs(parseCidr(a.cidr), parseCidr(b.cidr)))
  return { accepted, rejected }
}
