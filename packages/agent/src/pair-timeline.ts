/**
 * Pair timeline (debug log): when each member became a WireGuard peer here, with the time since
 * its record arrived. With 'peer joined' (record seen) and 'peer path' (first handshake) it gives
 * each pair's start-up timeline.
 */
import type { DesiredWireGuard, Membership } from '@wgmesh/core'
import type { Logger } from './logger.js'

export class PairTimeline {
  private readonly log: Logger
  private configured = new Set<string>()

  constructor (log: Logger) {
    this.log = log
  }

  /** After an apply: log the peers that were not configured before. */
  applied (desired: DesiredWireGuard, table: Membership, now: number): void {
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
}
