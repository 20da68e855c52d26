/**
 * What the host's routing must look like for advertised routes (gateway.ts). Pure: the texts of
 * commands and the nftables ruleset; host-routes.ts runs them.
 *
 * Three jobs, each owned by one piece of state wgmesh can recognise as its own:
 *  - consumer routes: `ip route … dev <mesh interface> proto 109` for every subnet some peer
 *    is the active gateway of. The protocol number marks them as ours: a restart (or a kill -9
 *    before it) finds and reconciles them without touching anybody else's routes.
 *  - gateway forwarding: the table `inet wgmesh_<iface>` forwards from the mesh interface only
 *    to the advertised subnets (exit: anywhere but back into the mesh), lets only replies back
 *    in, and masquerades what leaves (so the service LAN answers through the gateway that
 *    carried the request — the active one: return traffic stays symmetric across a failover).
 *  - exit node (consumer): wg-quick's policy routing: WireGuard's own packets carry a fwmark and
 *    use the main table; everything else that the main table only knows through its default
 *    route goes to table EXIT_TABLE (default dev <mesh interface>). Peers' underlay addresses
 *    get a rule to the main table, so gossip and probes to them never enter the tunnel.
 */

/** `ip route … proto` number that marks the routes wgmesh added (not a name in rt_protos). */
export const ROUTE_PROTO = 109
/** Routing table and fwmark of the exit-node policy routing (wg-quick uses the port; this is wgmesh's). */
export const EXIT_TABLE = 30573
export const EXIT_FWMARK = 30573
/** Rule priorities: peers' underlay → main, then main without default routes, then the exit table. */
export const RULE_PREF_PEERS = 30570
export const RULE_PREF_SUPPRESS = 30571
export const RULE_PREF_EXIT = 30572

export const isExitCidr = (c: string): boolean => c === '0.0.0.0/0' || c === '::/0'
const isV6 = (c: string): boolean => c.includes(':')

/** One route of `ip -j route show dev X`; "default" means the family's /0. */
export interface IpRoute { dst: string, protocol?: string | number }

/** The routes to add and to delete so that exactly `want` (non-exit CIDRs) are ours on the interface. */
export function routeDiff (have: IpRoute[], family: 4 | 6, want: string[]): { add: string[], del: string[] } {
  const ours = new Set<string>()
  for (const r of have) {
    if (String(r.protocol) !== String(ROUTE_PROTO)) continue
    ours.add(r.dst === 'default' ? (family === 4 ? '0.0.0.0/0' : '::/0') : r.dst.includes('/') ? r.dst : `${r.dst}/${family === 4 ? 32 : 128}`)
  }
  const wanted = new Set(want.filter(c => isV6(c) === (family === 6) && !isExitCidr(c)))
  return { add: [...wanted].filter(c => !ours.has(c)).sort(), del: [...ours].filter(c => !wanted.has(c)).sort() }
}

/** nft identifiers: letters, digits, '_'; an interface name may also hold . = + - */
export function nftTableName (iface: string): string {
  return `wgmesh_${iface.replace(/[^A-Za-z0-9_]/g, '_')}`
}

export interface ForwardingPlan {
  iface: string
  /** Advertised non-exit CIDRs. */
  routes: string[]
  /** Advertises 0.0.0.0/0 or ::/0: forward from the mesh to anywhere outside it. */
  exit4: boolean
  exit6: boolean
  masquerade: boolean
  /**
   * Interfaces whose forwarding wgmesh switched on: nothing may be forwarded from them but
   * replies into the mesh; '*' = all of them (conf/all, an exit node): nothing between two
   * non-mesh interfaces.
   */
  flipped: string[]
}

const q = (s: string): string => JSON.stringify(s)

/** The whole table, replaced atomically by `nft -f -` (the delete of the old one comes first). */
export function forwardingRuleset (p: ForwardingPlan, exists: boolean): string {
  const t = nftTableName(p.iface)
  const wg = q(p.iface)
  const v4 = p.routes.filter(c => !isV6(c))
  const v6 = p.routes.filter(isV6)
  const lines: string[] = []
  if (exists) lines.push(`delete table inet ${t}`)
  lines.push(`table inet ${t} {`)
  lines.push('  set routes4 { type ipv4_addr; flags interval;' + (v4.length > 0 ? ` elements = { ${v4.join(', ')} }` : '') + ' }')
  lines.push('  set routes6 { type ipv6_addr; flags interval;' + (v6.length > 0 ? ` elements = { ${v6.join(', ')} }` : '') + ' }')
  lines.push('  chain forward {')
  lines.push('    type filter hook forward priority filter; policy accept;')
  lines.push(`    iifname ${wg} oifname != ${wg} ip daddr @routes4 accept`)
  lines.push(`    iifname ${wg} oifname != ${wg} ip6 daddr @routes6 accept`)
  if (p.exit4) lines.push(`    iifname ${wg} oifname != ${wg} meta nfproto ipv4 accept`)
  if (p.exit6) lines.push(`    iifname ${wg} oifname != ${wg} meta nfproto ipv6 accept`)
  lines.push(`    iifname ${wg} drop`)
  lines.push(`    oifname ${wg} ct state established,related accept`)
  lines.push(`    oifname ${wg} drop`)
  for (const f of p.flipped) {
    if (f === '*') lines.push(`    iifname != ${wg} oifname != ${wg} drop`)
    else if (f !== p.iface) lines.push(`    iifname ${q(f)} drop`)
  }
  lines.push('  }')
  if (p.masquerade) {
    lines.push('  chain postrouting {')
    lines.push('    type nat hook postrouting priority srcnat; policy accept;')
    lines.push(`    iifname ${wg} oifname != ${wg} masquerade`)
    lines.push('  }')
  }
  lines.push('}')
  return lines.join('\n') + '\n'
}

/** `ip rule` argv tails (after `ip -4|-6 rule add`) of the exit policy routing for one family. */
export function exitRules (peerAddrs: string[]): string[][] {
  return [
    ...peerAddrs.map(a => ['to', a, 'lookup', 'main', 'pref', String(RULE_PREF_PEERS)]),
    ['table', 'main', 'suppress_prefixlength', '0', 'pref', String(RULE_PREF_SUPPRESS)],
    ['not', 'fwmark', String(EXIT_FWMARK), 'table', String(EXIT_TABLE), 'pref', String(RULE_PREF_EXIT)]
  ]
}

/** One rule of `ip -j rule show`. */
export interface IpRule { priority?: number, dst?: string, dstlen?: number }

/** The peer-address rules (pref RULE_PREF_PEERS) to add and delete so that exactly `want` are there. */
export function peerRuleDiff (have: IpRule[], want: string[]): { add: string[], del: string[] } {
  const held = new Set(have.filter(r => r.priority === RULE_PREF_PEERS && r.dst !== undefined).map(r => r.dst!))
  const w = new Set(want)
  return { add: [...w].filter(a => !held.has(a)).sort(), del: [...held].filter(a => !w.has(a)).sort() }
}
