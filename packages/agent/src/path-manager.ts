/**
 * Keeps one PathState per peer and turns WireGuard's counters into routes for the planner.
 * Thin: every decision is core's (candidates.ts, paths.ts, relay.ts).
 */
import {
  chooseRelay, indexSeenClaims, initialPathState, RELAY_SETUP_MS, isOnLan, noCommonFamily, pathKind, peerCandidates, relayEligible, shortId, stepPath,
  type Cidr, type Family, type Membership, type NatType, type NodeRecord, type PathKind, type PathPolicy, type PathState, type PeerRoute
} from '@wgmesh/core'
import type { Dump } from '@wgmesh/wireguard'

/** A relay that carried nothing for a pair is passed over for it this long. */
export const RELAY_RETRY_MS = 5 * 60_000

/**
 * First contact: a peer in WireGuard with an endpoint and no handshake yet gets its entry
 * re-created (DesiredPeer.kick), at most {@link FIRST_CONTACT_KICKS} times, on a schedule that
 * differs between the pair's two ends; WireGuard's own retries (one per 5 s) after that.
 *
 * Two ends that add each other at the same moment both initiate at once (traffic is waiting at
 * both), and the initiations cross: each end answers the other's, which replaces its own
 * handshake, and then drops the answer to its own (wireguard-go's ConsumeMessageResponse wants
 * the state it just left). Neither completes, and each retries only after REKEY_TIMEOUT, 5 s: the
 * 5–7 s tail of the benchmark's t_full. (Or one end's try arrives before the other has the peer,
 * and is dropped.) A handshake completes within a round trip, so 0.5 s without one means it
 * failed. Re-creating the entry drops WireGuard's 5 s wait and the next packet initiates; if both
 * ends did it at the same moment, their new initiations would cross again, so the end with the
 * lower WireGuard public key re-creates at {@link FIRST_CONTACT_LOWER}, the other at
 * {@link FIRST_CONTACT_HIGHER}: later and at another pace, so the two schedules meet once at
 * most, whatever the offset between the moments the two ends added each other. The first re-creation that
 * gets through makes the handshake, and the other end stops (it has one too).
 *
 * Between two public ends, bytes received do not count as contact: wireguard-go counts
 * handshake messages in rx_bytes, and an end that answered a crossed initiation has received
 * one. (Where either end is behind a NAT, only a peer that sent nothing is re-created: the
 * entry may have roamed to the address the peer's packets came from, which re-creating
 * forgets.) Data can only come after a handshake, which the dump shows. But rx that grows (a handshake message just came) puts the
 * next re-creation off by a step: the handshake may be completing.
 */
export const FIRST_CONTACT_LOWER = { afterMs: 500, everyMs: 1000 }
export const FIRST_CONTACT_HIGHER = { afterMs: 1000, everyMs: 1500 }
export const FIRST_CONTACT_KICKS = 3

export interface PathView { path: PathKind, via?: string, candidates: string[] }

/**
 * Where a relay copies our end of a pair: "host:port" (the relay's address in one of our
 * underlay `families`, empty: any), or undefined while not (yet) known.
 */
export type RelayEndpoint = (relay: NodeRecord, peerId: string, relayWgEndpoint: string | undefined, ask: boolean, families: ReadonlySet<Family>) => string | undefined

export class PathManager {
  private readonly states = new Map<string, PathState>()
  private routes = new Map<string, PeerRoute>()
  private readonly views = new Map<string, PathView>()
  private readonly policy: PathPolicy
  /** Per peer: relays that carried nothing for that pair (→ until when they are passed over). */
  private readonly failedRelays = new Map<string, Map<string, number>>()
  /** Per peer: the relay its relayed phase uses. */
  private readonly relayOf = new Map<string, string>()
  /** Per peer in WireGuard: the first-contact re-creations asked for, when the last one was (or when it appeared there, or a handshake message last came), and its rx bytes then. */
  private readonly contact = new Map<string, { kicks: number, last: number, rx: number }>()
  /** Path changes of the last step (for the session log). */
  changes: Array<{ nodeId: string, name: string, path: PathKind, via?: string }> = []
  /** Family fallbacks of the last step: the peer moved off `from` (its family's path died). */
  fallbacks: Array<{ nodeId: string, name: string, from: string, to: string }> = []

  constructor (policy: PathPolicy) {
    this.policy = policy
  }

  /** One step for every peer. Returns true when the routes changed (→ apply). */
  step (now: number, table: Membership, self: NodeRecord, selfNat: NatType, dump: Dump | undefined,
    localSubnets: Cidr[], lanDiscovered: ReadonlyMap<string, string>, relayEndpoint: RelayEndpoint = () => undefined,
    unanswered: ReadonlyMap<string, number> = new Map()): boolean {
    const byKey = new Map((dump?.peers ?? []).map(p => [p.publicKey, p]))
    const active = table.active().filter(m => m.record.nodeId !== self.nodeId && m.conflict === undefined)
    // once per step, not per peer (at N members that was O(N²) work every tick)
    const relays = active.filter(m => m.status === 'alive' && relayEligible(m.record)).map(m => m.record)
    const seen = indexSeenClaims(table.all().map(m => m.record))
    // the families we have an underlay address of (each local address comes with its subnet):
    // a v6-only host skips its peers' IPv4 candidates, a v4-only host their IPv6 ones
    const families = new Set(localSubnets.map(c => c.family))
    const next = new Map<string, PeerRoute>()
    let roamedAway = false
    this.changes = []
    this.fallbacks = []
    for (const m of active) {
      const r = m.record
      const wg = byKey.get(r.wgPublicKey)
      const counters = wg === undefined ? undefined : { latestHandshake: wg.latestHandshake, rxBytes: wg.transferRx }
      const lan = lanDiscovered.get(r.nodeId)
      const candidates = peerCandidates(r, { localSubnets, seen, lanDiscovered: lan === undefined ? [] : [lan], families })
      // ends of no common family (an IPv6-only and an IPv4-only host): no direct path can
      // form, whatever their NAT types; the relay must reach each over a family it has
      const apart = noCommonFamily(self, r)
      const relay = chooseRelay(self, r, this.usableRelays(r.nodeId, relays, now))
      let prev = this.states.get(r.nodeId) ?? initialPathState(now, counters)
      if (apart && prev.phase === 'direct') prev = { ...prev, phase: 'punching', since: now, punchStart: now, stepAt: now } // (restarted under a relayed session)
      if (prev.phase === 'relay' && relay !== undefined && this.relayOf.get(r.nodeId) !== relay.nodeId) {
        prev = { ...prev, since: now, carrying: false } // another relay: it gets its own set-up time
      }
      const relayWg = relay === undefined ? undefined : byKey.get(relay.wgPublicKey)?.endpoint
      const relayKnown = relay === undefined ? undefined : relayEndpoint(relay, r.nodeId, relayWg, false, families)
      const d = stepPath(prev, {
        now,
        candidates,
        counters,
        // a public end can always be reached by the other one initiating: never relay such a
        // pair (both ends see the same nat fields, so both decide alike) — unless the ends
        // share no family (both see the same endpoints too): then relay at once
        relayAvailable: relay !== undefined && (apart || (selfNat !== 'public' && r.nat !== 'public')),
        hopeless: apart || (selfNat === 'symmetric' && r.nat === 'symmetric'),
        holdsMapping: selfNat !== 'public',
        peerSendsKeepalive: r.nat !== 'public',
        natKey: `${selfNat}/${r.nat ?? 'unknown'}`,
        endpointIsRelay: relayKnown === undefined ? undefined : wg?.endpoint === relayKnown,
        // the failure detector's direct pings to it unanswered: a dead direct path tries the other family
        unansweredSince: unanswered.get(r.nodeId),
        currentEndpoint: wg?.endpoint
      }, this.policy)
      if (d.state.phase === 'relay' && relay !== undefined) {
        this.relayOf.set(r.nodeId, relay.nodeId)
        if (d.state.carrying !== true && now - d.state.since >= RELAY_SETUP_MS) {
          // a relay that carries nothing (down, refusing, or posing as a relay and dropping):
          // both ends see the same silence, so both pass it over and move to the next one
          let failed = this.failedRelays.get(r.nodeId)
          if (failed === undefined) this.failedRelays.set(r.nodeId, failed = new Map())
          failed.set(relay.nodeId, now + RELAY_RETRY_MS)
        }
      } else {
        this.relayOf.delete(r.nodeId)
      }
      if (d.state.fellBackFrom !== undefined && prev.fellBackFrom === undefined && d.endpoint !== undefined) {
        this.fallbacks.push({ nodeId: r.nodeId, name: r.name, from: d.state.fellBackFrom, to: d.endpoint })
      }
      this.states.set(r.nodeId, d.state)
      const route: PeerRoute = { keepaliveS: d.keepaliveS }
      if (d.endpoint !== undefined) route.endpoint = d.endpoint
      if (d.state.phase === 'punching' && relayKnown !== undefined) {
        // punching after a relayed phase: packets still coming through the relay roam WireGuard
        // back to the relay's port; set our candidate again (and re-plan while it differs)
        route.pin = true
        if (wg?.endpoint !== undefined && d.endpoint !== undefined && wg.endpoint !== d.endpoint) roamedAway = true
      }
      if (d.relayed && relay !== undefined) {
        // our entry for the peer points at the relay's port for our end of the pair; until the
        // relay has answered, it keeps its last candidate
        route.via = relay.nodeId
        const ep = relayEndpoint(relay, r.nodeId, relayWg, true, families)
        if (ep !== undefined) route.endpoint = ep
      }
      const kick = this.firstContact(r.nodeId, wg, route, now, self.wgPublicKey < r.wgPublicKey ? FIRST_CONTACT_LOWER : FIRST_CONTACT_HIGHER, selfNat === 'public' && r.nat === 'public')
      if (kick > 0) route.kick = kick
      next.set(r.nodeId, route)
      // 'lan' is a private network behind our NAT; public hosts sharing a subnet are 'direct'
      const onLan = selfNat !== 'public' && wg?.endpoint !== undefined && isOnLan(wg.endpoint, localSubnets)
      const view: PathView = { path: pathKind(d.state, onLan, now, this.policy), candidates }
      if (route.via !== undefined) view.via = relay!.name
      const before = this.views.get(r.nodeId)
      if (before?.path !== view.path || before?.via !== view.via) {
        const c: { nodeId: string, name: string, path: PathKind, via?: string } = { nodeId: r.nodeId, name: r.name, path: view.path }
        if (view.via !== undefined) c.via = view.via
        this.changes.push(c)
      }
      this.views.set(r.nodeId, view)
    }
    for (const id of [...this.states.keys()]) {
      if (!next.has(id)) { this.states.delete(id); this.views.delete(id); this.failedRelays.delete(id); this.relayOf.delete(id); this.contact.delete(id) }
    }
    const changed = roamedAway || !sameRoutes(this.routes, next)
    this.routes = next
    return changed
  }

  /**
   * The first-contact re-creations asked for the peer so far (see {@link FIRST_CONTACT_LOWER}):
   * one more when it is in WireGuard with a direct endpoint, has never completed a handshake,
   * and its last try is old enough by this end's schedule. A handshake message that just came
   * (its rx grew) puts the next try off by a step: we may have just answered an initiation,
   * and re-creating the entry before the initiator's first packet confirms it would throw away
   * the session the initiator then uses (it would send into the void until its rekey, 15 s).
   */
  private firstContact (peerId: string, wg: { latestHandshake: number, transferRx: number } | undefined, route: PeerRoute, now: number, schedule: { afterMs: number, everyMs: number }, bothPublic: boolean): number {
    if (wg === undefined) return 0 // not in WireGuard yet
    let c = this.contact.get(peerId)
    if (c === undefined) this.contact.set(peerId, c = { kicks: 0, last: now, rx: wg.transferRx })
    if (wg.transferRx > c.rx) c.last = now
    c.rx = wg.transferRx // a re-created entry starts again at 0
    // behind a NAT, what came in may be the only way to the peer (WireGuard roamed to its
    // mapped address): a re-created entry would forget it, so there, only a peer that sent
    // nothing is re-created
    if (wg.latestHandshake === 0 && (wg.transferRx === 0 || bothPublic) && route.endpoint !== undefined && route.via === undefined && c.kicks < FIRST_CONTACT_KICKS &&
      now - c.last >= (c.kicks === 0 ? schedule.afterMs : schedule.everyMs)) {
      c.kicks++
      c.last = now
    }
    return c.kicks
  }

  /** Relay candidates for the pair with `peerId`: the one carrying it, else the alive relays not passed over lately. */
  private usableRelays (peerId: string, alive: NodeRecord[], now: number): NodeRecord[] {
    // a relay that carries the pair keeps it (both ends are on it and both see it carry)
    const cur = this.relayOf.get(peerId)
    const st = this.states.get(peerId)
    if (cur !== undefined && st?.phase === 'relay' && st.carrying === true) {
      const r = alive.find(x => x.nodeId === cur)
      if (r !== undefined) return [r]
    }
    const failed = this.failedRelays.get(peerId)
    if (failed === undefined) return alive
    for (const [id, until] of failed) if (until <= now) failed.delete(id)
    return alive.filter(x => !failed.has(x.nodeId))
  }

  get current (): ReadonlyMap<string, PeerRoute> { return this.routes }
  view (nodeId: string): PathView | undefined { return this.views.get(nodeId) }

  /** No peer is punching, relayed or down. */
  allDirect (): boolean {
    for (const v of this.views.values()) if (v.path !== 'direct' && v.path !== 'lan') return false
    return true
  }

  /**
   * What we observe for our direct peers that they do not advertise themselves (their NAT's
   * real mapping), for the `seen` field of our record.
   */
  observations (table: Membership, dump: Dump | undefined): Record<string, string> {
    const out: Record<string, string> = {}
    const byKey = new Map((dump?.peers ?? []).map(p => [p.publicKey, p]))
    for (const m of table.active()) {
      const st = this.states.get(m.record.nodeId)
      const ep = byKey.get(m.record.wgPublicKey)?.endpoint
      if (st?.phase !== 'direct' || ep === undefined || m.record.endpoints.includes(ep)) continue
      out[shortId(m.record.nodeId)] = ep
      if (Object.keys(out).length >= 32) break
    }
    return out
  }
}

function sameRoutes (a: ReadonlyMap<string, PeerRoute>, b: ReadonlyMap<string, PeerRoute>): boolean {
  if (a.size !== b.size) return false
  for (const [k, x] of a) {
    const y = b.get(k)
    if (y === undefined || x.endpoint !== y.endpoint || x.keepaliveS !== y.keepaliveS || x.via !== y.via || x.pin !== y.pin || x.kick !== y.kick) return false
  }
  return true
}
