/**
 * One-of-N gateway failover: which member of each gateway group carries the group's routes,
 * whether this node should claim or release that role, and what that adds to each peer's
 * AllowedIPs. Pure: members, the time and the policy come in; decisions come out.
 *
 * Every member of a group advertises the routes it can reach; exactly one of them, the ACTIVE
 * gateway, gets them in the other peers' AllowedIPs (WireGuard routes a prefix to one peer
 * only). The active is not negotiated: every node computes it from the same inputs —
 * the live members and the claims in their records — with the same total order:
 *   1. a CLAIMER (a record with `gw.since`) beats a non-claimer;
 *   2. then higher priority;
 *   3. among claimers, the earlier claim (`since`);
 *   4. then the nodeId (ordinal comparison: the same on every node, whatever its locale).
 * The claim is what makes the choice sticky: without it, each node would move the routes to a
 * better gateway the moment it comes back, sometimes mid-connection. The protocol that results
 * from `claimDecision`:
 *   - at steady state exactly one member of a group claims, and it is everyone's active;
 *   - when the active dies, every node's election falls to the next best live member at once,
 *     by rules 2 and 4, without waiting for anyone's claim; that member then claims, which
 *     changes nobody's choice, only pins it;
 *   - a member that comes back after a failover does not take over in 'sticky' policy; in
 *     'preferred' policy a strictly higher-priority member claims after `preemptDelayMs` of
 *     being up and seen (a hold-down against a flapping gateway), wins by rule 2, and the old
 *     claimer sees that and releases;
 *   - when two halves of a partition merge with a claimer each, the higher priority wins, at
 *     equal priority the earlier claim (rule 3), and the loser releases.
 * Views differ for a moment while records and deaths spread; they agree again once the nodes
 * hold the same records and the same liveness, since the election uses nothing else.
 */
import { cidrContainsText, parseCidr } from './ip.js'
import { isExitRoute, sortRoutes } from './routes.js'

export interface GatewayMember {
  nodeId: string
  name: string
  group: string
  /** 0..1000, higher preferred. */
  priority: number
  /** Its accepted routes (`resolveRouteConflicts`). */
  routes: string[]
  /** ms epoch: it claims to be its group's active gateway since then. */
  since?: number
}

export interface GroupState {
  group: string
  /** nodeId of the active gateway. */
  active: string
  /** When the active claimed; absent while it is active by rank alone (no claimer is live). */
  activeSince?: number
  /** The active member's routes. */
  routes: string[]
  /** The group's live members, best first (`members[0]` is the active). */
  members: GatewayMember[]
}

export type ClaimPolicy = 'preferred' | 'sticky'

export interface ClaimInput {
  self: GatewayMember
  /** Whether this node's current record claims (its `since` is then `self.since`). */
  selfClaiming: boolean
  policy: ClaimPolicy
  /** The other live members, of any group, excluding self. */
  live: GatewayMember[]
  now: number
  /** How long self has been serving and seen by its peers. */
  aliveForMs: number
  preemptDelayMs: number
}

const ordinal = (a: string, b: string): number => a < b ? -1 : a > b ? 1 : 0

/** The election order (see the header): negative when `a` ranks before `b`. */
export function compareGatewayRank (a: GatewayMember, b: GatewayMember): number {
  const ac = a.since !== undefined
  const bc = b.since !== undefined
  if (ac !== bc) return ac ? -1 : 1
  if (a.priority !== b.priority) return b.priority - a.priority
  if (ac && bc && a.since !== b.since) return a.since! - b.since!
  return ordinal(a.nodeId, b.nodeId)
}

/** Whether a member can serve at all: one whose routes were all refused has nothing to carry. */
const serves = (m: GatewayMember): boolean => m.routes.length > 0

/**
 * The active gateway of every group among `live` (the caller keeps only members it holds
 * alive). Members without routes are left out. Independent of the input order.
 */
export function electGateways (live: GatewayMember[]): Map<string, GroupState> {
  const byGroup = new Map<string, GatewayMember[]>()
  for (const m of live) {
    if (!serves(m)) continue
    byGroup.set(m.group, [...(byGroup.get(m.group) ?? []), m])
  }
  const out = new Map<string, GroupState>()
  for (const group of [...byGroup.keys()].sort(ordinal)) {
    const members = byGroup.get(group)!.sort(compareGatewayRank)
    const best = members[0]!
    const state: GroupState = { group, active: best.nodeId, routes: sortRoutes(best.routes), members }
    if (best.since !== undefined) state.activeSince = best.since
    out.set(group, state)
  }
  return out
}

/**
 * What this node should do with its own claim: 'claim' (publish `gw.since = now`), 'release'
 * (publish without `since`) or 'keep' (change nothing). See the header for the protocol.
 */
export function claimDecision (input: ClaimInput): 'claim' | 'release' | 'keep' {
  const { self, selfClaiming, policy, now } = input
  if (!serves(self)) return selfClaiming ? 'release' : 'keep'
  const peers = input.live.filter(m => m.group === self.group && m.nodeId !== self.nodeId && serves(m))
  const claimers = peers.filter(m => m.since !== undefined)
  if (selfClaiming) {
    const me: GatewayMember = { ...self, since: self.since ?? now }
    return claimers.some(c => compareGatewayRank(c, me) < 0) ? 'release' : 'keep'
  }
  if (claimers.length === 0) {
    // nobody pins the group: claim what every node's election already gives us
    const me: GatewayMember = { ...self, since: undefined }
    return peers.every(p => compareGatewayRank(me, p) < 0) ? 'claim' : 'keep'
  }
  if (policy === 'preferred' && claimers.every(c => self.priority > c.priority) && input.aliveForMs >= input.preemptDelayMs) {
    return 'claim'
  }
  return 'keep'
}

export interface GatewayAllowedIpsOptions {
  /** This node's nodeId. */
  self: string
  /** The groups this node is a member of: it reaches their routes itself. */
  ownGroups: Set<string>
  /** This host's own underlay addresses. */
  localAddrs: string[]
  /** The group whose exit routes (0.0.0.0/0, ::/0) this node uses, if any. */
  exitGroup?: string
}

/**
 * The AllowedIPs each peer gets on top of its overlay addresses: every other group's routes go
 * to that group's active gateway. Exit routes only for the group this node opted into. A route
 * containing one of this host's own underlay addresses is left out: the host reaches that
 * subnet directly, and routing it into the tunnel would also take the tunnel's own packets to
 * the gateway's endpoint. Lists are canonical and sorted; peers that get nothing are absent.
 */
export function gatewayAllowedIps (groups: Map<string, GroupState>, opts: GatewayAllowedIpsOptions): Map<string, string[]> {
  const extra = new Map<string, string[]>()
  for (const g of groups.values()) {
    if (opts.ownGroups.has(g.group) || g.active === opts.self) continue
    const take = sortRoutes(g.routes).filter(r => isExitRoute(r)
      ? g.group === opts.exitGroup
      : !opts.localAddrs.some(a => cidrContainsText(parseCidr(r), a)))
    if (take.length > 0) extra.set(g.active, [...(extra.get(g.active) ?? []), ...take])
  }
  const out = new Map<string, string[]>()
  for (const nodeId of [...extra.keys()].sort(ordinal)) out.set(nodeId, sortRoutes(extra.get(nodeId)!))
  return out
}
