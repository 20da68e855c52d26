/**
 * Prometheus metrics (prom-client), one registry per agent so several agents can share a
 * process in tests. Per-peer WireGuard numbers are read at scrape time by `collectPeers`.
 */
import { Counter, Gauge, Registry } from 'prom-client'
import { REJECT_REASONS, type RejectReason } from '@wgmesh/core'

export interface PeerSample { name: string, nodeId: string, status: string, rxBytes: number, txBytes: number, latestHandshake: number }

export class AgentMetrics {
  readonly registry = new Registry()
  readonly rejected: Counter<'reason'>
  readonly accepted: Counter<'via'>
  readonly ignored: Counter<'reason'>
  private readonly counts = new Map<string, number>()

  constructor (collectPeers: () => Promise<PeerSample[]>) {
    const registers = [this.registry]
    this.rejected = new Counter({ name: 'wgmesh_records_rejected_total', help: 'Records refused, by reason', labelNames: ['reason'], registers })
    for (const r of REJECT_REASONS) this.rejected.inc({ reason: r }, 0)
    this.accepted = new Counter({ name: 'wgmesh_records_accepted_total', help: 'Records taken into the table', labelNames: ['via'], registers })
    this.ignored = new Counter({ name: 'wgmesh_records_ignored_total', help: 'Records dropped without blame (duplicates, stale sync copies, own)', labelNames: ['reason'], registers })
    const peers = new Gauge({ name: 'wgmesh_peers', help: 'Mesh members by status', labelNames: ['status'], registers })
    const rx = new Gauge({ name: 'wgmesh_peer_rx_bytes_total', help: 'WireGuard bytes received from a peer', labelNames: ['peer', 'node_id'], registers })
    const tx = new Gauge({ name: 'wgmesh_peer_tx_bytes_total', help: 'WireGuard bytes sent to a peer', labelNames: ['peer', 'node_id'], registers })
    const hs = new Gauge({ name: 'wgmesh_peer_latest_handshake_seconds', help: 'Unix time of the latest WireGuard handshake (0 = never)', labelNames: ['peer', 'node_id'], registers })
    // one collect for all per-peer gauges, at scrape time
    const collect = async (): Promise<void> => {
      const samples = await collectPeers()
      peers.reset(); rx.reset(); tx.reset(); hs.reset()
      for (const status of ['alive', 'dead', 'conflict']) peers.set({ status }, samples.filter(s => s.status === status).length)
      for (const s of samples) {
        const l = { peer: s.name, node_id: s.nodeId }
        rx.set(l, s.rxBytes); tx.set(l, s.txBytes); hs.set(l, s.latestHandshake)
      }
    }
    const origMetrics = this.registry.metrics.bind(this.registry)
    this.registry.metrics = async () => { await collect(); return await origMetrics() }
  }

  reject (reason: RejectReason): void {
    this.rejected.inc({ reason })
    this.counts.set(reason, (this.counts.get(reason) ?? 0) + 1)
  }

  /** Rejections so far, by reason (for `wgmesh info --json`). */
  rejections (): Record<string, number> {
    return Object.fromEntries(this.counts)
  }
}
