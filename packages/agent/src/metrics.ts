/**
 * Prometheus metrics, one registry per agent so several agents can share a process in tests.
 * Per-peer WireGuard numbers are read at scrape time by `collectPeers`.
 *
 * A few counters and gauges rendered in the Prometheus text format (0.0.4), byte for byte
 * what prom-client printed for them; prom-client itself is not used: it cost every agent
 * ~4 MiB of RSS and ~35 ms of start for what fits in this file.
 */
import { REJECT_REASONS, type RejectReason } from '@wgmesh/core'

export interface PeerSample { name: string, nodeId: string, status: string, rxBytes: number, txBytes: number, latestHandshake: number }

type Labels<L extends string> = Partial<Record<L, string | number>>

const escLabel = (v: string): string => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')
const escHelp = (v: string): string => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')
const fmtValue = (v: number): string => Number.isNaN(v) ? 'Nan' : v === Infinity ? '+Inf' : v === -Infinity ? '-Inf' : `${v}`

/** A labelled counter or gauge: values by label set, in first-use order. */
class Metric<L extends string> {
  private readonly values = new Map<string, { labels: Labels<L>, value: number }>()

  constructor (readonly name: string, readonly help: string, readonly type: 'counter' | 'gauge', private readonly labelNames: readonly L[]) {}

  private slot (labels: Labels<L>): { labels: Labels<L>, value: number } {
    const key = this.labelNames.map(n => String(labels[n] ?? '')).join('\u0000')
    let s = this.values.get(key)
    if (s === undefined) this.values.set(key, s = { labels: { ...labels }, value: 0 })
    return s
  }

  inc (labels: Labels<L>, by = 1): void {
    if (this.type === 'counter' && !(by >= 0)) throw new Error(`${this.name}: a counter only goes up`)
    this.slot(labels).value += by
  }

  set (labels: Labels<L>, value: number): void {
    this.slot(labels).value = value
  }

  reset (): void {
    this.values.clear()
  }

  render (): string {
    let out = `# HELP ${this.name} ${escHelp(this.help)}\n# TYPE ${this.name} ${this.type}\n`
    for (const { labels, value } of this.values.values()) {
      const ls = Object.entries(labels).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}="${escLabel(String(v))}"`)
      out += `${this.name}${ls.length > 0 ? `{${ls.join(',')}}` : ''} ${fmtValue(value)}\n`
    }
    return out
  }
}

export type Counter<L extends string> = Pick<Metric<L>, 'inc'>

/** What the agent scrapes: `metrics()` renders every metric (after collecting the per-peer ones). */
export class MetricsRegistry {
  readonly contentType = 'text/plain; version=0.0.4; charset=utf-8'
  private readonly list: Array<Metric<string>> = []

  constructor (private readonly beforeScrape: () => Promise<void> = async () => {}) {}

  add<L extends string>(m: Metric<L>): Metric<L> {
    this.list.push(m as unknown as Metric<string>)
    return m
  }

  async metrics (): Promise<string> {
    await this.beforeScrape()
    return this.list.map(m => m.render()).join('\n')
  }
}

export class AgentMetrics {
  readonly registry: MetricsRegistry
  readonly rejected: Counter<'reason'>
  readonly accepted: Counter<'via'>
  readonly ignored: Counter<'reason'>
  private readonly counts = new Map<string, number>()

  constructor (collectPeers: () => Promise<PeerSample[]>) {
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
    const r = this.registry = new MetricsRegistry(collect)
    const rejected = r.add(new Metric('wgmesh_records_rejected_total', 'Records refused, by reason', 'counter', ['reason']))
    for (const reason of REJECT_REASONS) rejected.inc({ reason }, 0)
    this.rejected = rejected
    this.accepted = r.add(new Metric('wgmesh_records_accepted_total', 'Records taken into the table', 'counter', ['via']))
    this.ignored = r.add(new Metric('wgmesh_records_ignored_total', 'Records dropped without blame (duplicates, stale sync copies, own)', 'counter', ['reason']))
    const peers = r.add(new Metric('wgmesh_peers', 'Mesh members by status', 'gauge', ['status']))
    const rx = r.add(new Metric('wgmesh_peer_rx_bytes_total', 'WireGuard bytes received from a peer', 'gauge', ['peer', 'node_id']))
    const tx = r.add(new Metric('wgmesh_peer_tx_bytes_total', 'WireGuard bytes sent to a peer', 'gauge', ['peer', 'node_id']))
    const hs = r.add(new Metric('wgmesh_peer_latest_handshake_seconds', 'Unix time of the latest WireGuard handshake (0 = never)', 'gauge', ['peer', 'node_id']))
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
