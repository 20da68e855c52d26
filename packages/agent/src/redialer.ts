/**
 * Keeps the gossip layer connected: dials seeds and known members as DialPolicy says (never
 * forgetting seeds or members that went away), and runs a periodic push-pull sync with a
 * random connected peer (anti-entropy beside gossipsub).
 */
import { peerIdOfNodeId, type Membership } from '@wgmesh/core'
import { DialPolicy, type DialTarget } from './dial-policy.js'
import { peerIdOf } from './self-record.js'
import type { KnownMember } from './state-store.js'
import type { GossipNode } from './transport/index.js'
import type { Logger } from './logger.js'

export interface RedialerHost {
  now: () => number
  gossip: () => GossipNode | undefined
  table: () => Membership
  selfId: () => string
  /** Members remembered in the state dir (a restarted node dials them without --peer). */
  known: () => KnownMember[]
  log: Logger
  /**
   * Run `fn` in `ms` (the agent's timers, cleared when it stops). A seed whose dial failed is
   * redialed when its back-off ends, not at the next redial tick. Left out: the tick only.
   */
  later?: (ms: number, fn: () => void) => void
}

/**
 * @default 2 s — a LAN neighbour heard while this node is joining or in a mesh is dialed only if
 * gossip has not brought its record by then (see {@link Redialer.discovered}).
 */
export const BEACON_DIAL_DELAY_MS = 2000

export class Redialer {
  private readonly policy = new DialPolicy()
  /** Beacon-heard gossip addresses waiting for gossip to bring their node's record: addr → first heard. */
  private readonly held = new Map<string, { nodeId: string, since: number }>()
  private readonly dialing = new Set<string>()
  /** connected peers → when first seen connected */
  private readonly since = new Map<string, number>()
  private readonly seeds: DialTarget[]
  private readonly host: RedialerHost

  constructor (seeds: string[], host: RedialerHost) {
    this.seeds = seeds.map(addr => ({ key: addr, addr, peerId: peerIdOf(addr) }))
    this.host = host
  }

  private memberTargets (): DialTarget[] {
    const out: DialTarget[] = []
    const seen = new Set<string>()
    const add = (addr: string): void => {
      if (seen.has(addr)) return
      seen.add(addr)
      out.push({ key: addr, addr, peerId: peerIdOf(addr) })
    }
    for (const m of this.host.table().all()) {
      if (m.record.nodeId === this.host.selfId() || m.status === 'left') continue
      m.record.gossipAddrs.forEach(add)
    }
    for (const k of this.host.known()) k.gossipAddrs.forEach(add)
    return out
  }

  redial (): void {
    const gossip = this.host.gossip()
    if (gossip === undefined) return
    const now = this.host.now()
    const connected = new Set(gossip.connectedPeers())
    // how long each peer has been connected (trim leaves young connections alone)
    for (const p of this.since.keys()) if (!connected.has(p)) this.since.delete(p)
    for (const p of connected) if (!this.since.has(p)) this.since.set(p, now)
    for (const p of this.policy.trim(now, this.since)) {
      this.since.delete(p)
      this.host.log.debug('closing a gossip connection above the ceiling', { peer: p, connections: connected.size })
      gossip.hangUp(p).catch((err: Error) => { this.host.log.debug('hang up failed', { peer: p, error: err.message }) })
    }
    for (const [addr, h] of [...this.held]) if (now - h.since >= BEACON_DIAL_DELAY_MS) this.discovered(h.nodeId, addr)
    const seedKeys = new Set(this.seeds.map(s => s.key))
    const inFlight = [...this.dialing].filter(k => !seedKeys.has(k)).length
    for (const t of this.policy.choose(now, connected, this.seeds, this.memberTargets(), inFlight)) {
      if (this.dialing.has(t.key) || (t.peerId !== undefined && t.peerId === gossip.peerId)) continue
      const seed = seedKeys.has(t.key)
      this.dialing.add(t.key)
      gossip.dial(t.addr).then(
        (peer) => {
          this.policy.succeeded(t.key, seed)
          if (seed) this.host.log.debug('seed reached', { addr: t.addr, peer })
        },
        (err: Error) => {
          // a --peer list shared by a fleet names this host too: that seed is reached
          if (seed && /dial self/i.test(err.message)) { this.policy.succeeded(t.key, true); return }
          const now = this.host.now()
          const until = this.policy.failed(t.key, now, seed)
          this.host.log.debug('dial failed', { addr: t.addr, error: err.message })
          if (seed) this.host.later?.(until - now, () => { this.redial() })
        }
      ).finally(() => { this.dialing.delete(t.key) })
    }
  }

  /** Whether dialing is pressing: a seed not reached yet, or no gossip connection at all. */
  urgent (): boolean {
    const gossip = this.host.gossip()
    if (gossip === undefined) return false
    return gossip.connectedPeers().length === 0 || this.seeds.some(s => !this.policy.seedReached(s.key))
  }

  /**
   * A member's path over one underlay family died (the path fell back to the other): drop our
   * gossip connections to it over that family and dial it again (its other addresses answer).
   */
  familyDied (nodeId: string, family: 4 | 6): void {
    const gossip = this.host.gossip()
    const peer = peerIdOfNodeId(nodeId)
    if (gossip === undefined || peer === undefined) return
    if (gossip.dropConnections(peer, family) > 0) this.dialMember(nodeId)
  }

  /** Dial a member's gossip addresses now, back-off or not (it answered a probe: it is back). */
  dialMember (nodeId: string): void {
    const gossip = this.host.gossip()
    const m = this.host.table().get(nodeId)
    if (gossip === undefined || m === undefined) return
    const connected = new Set(gossip.connectedPeers())
    for (const addr of m.record.gossipAddrs) {
      const peer = peerIdOf(addr)
      if (peer !== undefined && connected.has(peer)) return
    }
    for (const addr of m.record.gossipAddrs) {
      this.policy.succeeded(addr)
      if (this.dialing.has(addr)) continue
      this.dialing.add(addr)
      gossip.dial(addr).then(() => {}, (err: Error) => { this.host.log.debug('dial failed', { addr, error: err.message }) })
        .finally(() => { this.dialing.delete(addr) })
      break
    }
  }

  /**
   * A member announced its gossip address on our LAN (its beacon): dial it unless connected
   * to it already, so that nodes behind one NAT, or on a LAN with no other way in, find each
   * other's mesh. Failed addresses back off like any other.
   *
   * Not at once while this node has a way into a mesh (a gossip connection, or a seed not
   * reached yet): a neighbour in that mesh has its record brought by the first sync, and then
   * needs no dial of its own (the dial policy tops the connections up, paced). A LAN of hosts
   * started together otherwise made a connection between every two of them during the start
   * (~25 ms of CPU at each end, on top of each one's connection to the seed: 8 agents on
   * 2 cores, t_full is CPU-bound). Such a neighbour is dialed {@link BEACON_DIAL_DELAY_MS}
   * after it was first heard if its record has not come by then (another mesh: the halves merge).
   */
  discovered (nodeId: string, addr: string): void {
    const gossip = this.host.gossip()
    if (gossip === undefined || nodeId === this.host.selfId() || this.dialing.has(addr)) return
    const now = this.host.now()
    const m = this.host.table().get(nodeId)
    const connected = new Set(gossip.connectedPeers())
    // its record reached us over gossip and we are connected to its mesh (the dial policy tops
    // the connections up): nothing to do
    if (m !== undefined && connected.size > 0) {
      this.held.delete(addr)
      return
    }
    if (connected.size > 0 || this.seeds.some(s => !this.policy.seedReached(s.key))) {
      const h = this.held.get(addr)
      if (h === undefined) this.held.set(addr, { nodeId, since: now })
      if (h === undefined || now - h.since < BEACON_DIAL_DELAY_MS) return
    }
    this.held.delete(addr)
    if (!this.policy.ready(addr, now)) return
    this.dialing.add(addr)
    gossip.dial(addr).then(
      () => { this.policy.succeeded(addr); this.host.log.debug('dialed a LAN neighbour from its beacon', { addr }) },
      (err: Error) => { this.policy.failed(addr, this.host.now()); this.host.log.debug('dial failed', { addr, error: err.message }) }
    ).finally(() => { this.dialing.delete(addr) })
  }

  async syncRandomPeer (): Promise<void> {
    const gossip = this.host.gossip()
    const peers = gossip?.connectedPeers() ?? []
    const p = peers[Math.floor(Math.random() * peers.length)]
    if (p === undefined || gossip === undefined) return
    try { await gossip.sync(p) } catch (err) { this.host.log.debug('periodic sync failed', { peer: p, error: (err as Error).message }) }
  }
}
