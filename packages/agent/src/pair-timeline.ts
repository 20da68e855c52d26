/**
 * Pair timeline (debug log): when each member became a WireGuard peer here, with the time since
 * its record arrived. With 'peer joined' (record seen) and 'peer path' (first handshake) it gives
 * each pair's start-up timeline; a first-contact retry (the path manager re-creating a peer that
 * has not answered: DesiredPeer.kick) is logged as it is asked for.
 */
import type { DesiredWireGuard, Membership } from '@wgmesh/core'
import type { Logger } from './logger.js'

export class PairTimeline {
  private readonly log: Logger
  private configured = new Set<string>()
  /** Per peer key: the first-contact retries asked for so far. */
  private kicks = new Map<string, number>()

  constructor (log: Logger) {
    this.log = log
  }

  /** After an apply: log the peers that were not configured before. */
  applied (desired: DesiredWireGuard, table: Membership, now: number): void {
    this.retries(desired, table, now)
    if (this.configured.size === desired.peers.length && desired.peers.every(p => this.configured.has(p.publicKey))) return
    const byKey = new Map(table.all().map(m => [m.record.wgPublicKey, m]))
    const next = new Set<string>()
    for (const p of desired.peers) {
      next.add(p.publicKey)
      if (this.configured.has(p.publicKey)) continue
      const m = byKey.get(p.publicKey)
      this.log.debug('pair timeline: peer added', { peer: m?.record.name, nodeId: m?.record.nodeId, endpoint: p.endpoint, msSinceRecord: m === undefined ? undefined : now - m.firstSeen })
    }
    this.configured = next
  }

  private retries (desired: DesiredWireGuard, table: Membership, now: number): void {
    const next = new Map<string, number>()
    for (const p of desired.peers) {
      if (p.kick === undefined) continue
      next.set(p.publicKey, p.kick)
      if (p.kick === (this.kicks.get(p.publicKey) ?? 0)) continue
      const m = table.all().find(x => x.record.wgPublicKey === p.publicKey)
      this.log.debug('pair timeline: first-contact retry', { peer: m?.record.name, nodeId: m?.record.nodeId, retry: p.kick, endpoint: p.endpoint, msSinceRecord: m === undefined ? undefined : now - m.firstSeen })
    }
    this.kicks = next
  }
}
