/**
 * Prometheus metrics, one registry per agent so several agents can share a process in tests.
 * Per-peer WireGuard numbers, the NAT type and relay totals are read at scrape time from what
 * `wgmesh info` shows (`collect`).
 *
 * A few counters and gauges rendered in the Prometheus text format (0.0.4); prom-client is not
 * used: it cost every agent ~4 MiB of RSS and ~35 ms of start for what fits in this file.
 * Names and types pass `promtool check metrics` (counters end in `_total`, nothing else does).
 */
import { readdirSync } from 'node:fs'
import { REJECT_REASONS, type RejectReason } from '@wgmesh/core'
import type { AgentInfo } from './info.js'

/** What a scrape reads: the info view, and this node's relay totals if it relays. */
export interface ScrapeInput {
  info: AgentInfo
  relay?: { pairs: number, packets: number, bytes: number }
}

type Labels<L extends string> = Partial<Record<L, string | number>>

const escLabel = (v: string): string => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')
const escHelp = (v: string): string => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')
const fmtValue = (v: number): string => Number.isNaN(v) ? 'NaN' : v === Infinity ? '+Inf' : v === -Infinity ? '-Inf' : `${v}`

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

  constructor (private readonly beforeScrape: () => Promise<void> = async () => {}, private readonly extra: () => string = () => '') {}

  add<L extends string>(m: Metric<L>): Metric<L> {
    this.list.push(m as unknown as Metric<string>)
    return m
  }

  async metrics (): Promise<string> {
    await this.beforeScrape()
    return this.list.map(m => m.render()).join('') + this.extra()
  }
}

/**
 * Monotonic totals from values that may restart at zero: a peer's WireGuard rx/tx counters
 * restart when its entry is re-created (removed and added again, a new key), the relay's when
 * relaying is turned off and on. A value below the last one seen is taken as a restart: what
 * was seen before is carried over. Bytes moved between the last observation and the restart
 * are not counted (observations happen at each scrape and each `wgmesh info`).
 */
export class MonotonicTotals {
  private readonly seen = new Map<string, { last: number, carried: number }>()

  observe (key: string, raw: number): number {
    let s = this.seen.get(key)
    if (s === undefined) this.seen.set(key, s = { last: 0, carried: 0 })
    if (raw < s.last) s.carried += s.last
    s.last = raw
    return s.carried + raw
  }

  /** Forget keys not in `keep` (members gone from the table). */
  retain (keep: (key: string) => boolean): void {
    for (const k of this.seen.keys()) if (!keep(k)) this.seen.delete(k)
  }
}

const PATHS = ['direct', 'lan', 'relay', 'punching', 'down'] as const
const NAT_TYPES = ['public', 'cone', 'symmetric', 'unknown'] as const

/** The standard process and Node.js metrics (names as prom-client's default metrics). */
export function processMetrics (): string {
  const cpu = process.cpuUsage()
  const mem = process.memoryUsage()
  let fds: number | undefined
  try { fds = readdirSync('/proc/self/fd').length - 1 } catch {} // less the one readdir opened
  const m = (name: string, type: string, help: string, v: number): string => `# HELP ${name} ${help}\n# TYPE ${name} ${type}\n${name} ${fmtValue(v)}\n`
  return m('process_cpu_user_seconds_total', 'counter', 'User CPU time spent in seconds.', cpu.user / 1e6) +
    m('process_cpu_system_seconds_total', 'counter', 'System CPU time spent in seconds.', cpu.system / 1e6) +
    m('process_cpu_seconds_total', 'counter', 'Total user and system CPU time spent in seconds.', (cpu.user + cpu.system) / 1e6) +
    m('process_resident_memory_bytes', 'gauge', 'Resident memory size in bytes.', mem.rss) +
    m('process_start_time_seconds', 'gauge', 'Start time of the process since unix epoch in seconds.', Math.round(Date.now() / 1000 - process.uptime())) +
    (fds === undefined ? '' : m('process_open_fds', 'gauge', 'Number of open file descriptors.', fds)) +
    m('nodejs_heap_size_total_bytes', 'gauge', 'Process heap size from Node.js in bytes.', mem.heapTotal) +
    m('nodejs_heap_size_used_bytes', 'gauge', 'Process heap size used from Node.js in bytes.', mem.heapUsed) +
    m('nodejs_external_memory_bytes', 'gauge', 'Node.js external memory size in bytes.', mem.external)
}

export class AgentMetrics {
  readonly registry: MetricsRegistry
  readonly rejected: Counter<'reason'>
  readonly accepted: Counter<'via'>
  readonly ignored: Counter<'reason'>
  private readonly applyFailures: Counter<never>
  /** Gateway switches seen by this node, by group; advertised routes refused, by group. */
  readonly gatewayFailovers: Counter<'group'>
  readonly routesRejected: Counter<'group'>
  private readonly counts = new Map<string, number>()
  private readonly totals = new MonotonicTotals()

  /** `collect` is called at scrape time; `version` goes into wgmesh_build_info. */
  constructor (collect: () => Promise<ScrapeInput>, version = 'unknown') {
    // one collect for all per-peer gauges, at scrape time
    const scrape = async (): Promise<void> => {
      const { info, relay } = await collect()
      this.observe(info)
      for (const m of perScrape) m.reset()
      for (const status of ['alive', 'dead', 'conflict']) peers.set({ status }, info.peers.filter(p => p.status === status).length)
      for (const p of info.peers) {
        const l = { peer: p.name, node_id: p.nodeId }
        rx.set(l, p.rxTotal ?? p.rxBytes); tx.set(l, p.txTotal ?? p.txBytes)
        if (p.latestHandshake !== undefined) hs.set(l, p.latestHandshake)
        for (const path of PATHS) pathG.set({ ...l, path }, p.path === path ? 1 : 0)
        if (p.via !== undefined) via.set({ ...l, via: p.via }, 1)
        if (p.rttMs !== undefined) rtt.set(l, p.rttMs / 1000)
      }
      for (const t of NAT_TYPES) nat.set({ type: t }, info.nat === t ? 1 : 0)
      for (const g of info.groups ?? []) {
        if (g.active !== undefined) gwActive.set({ group: g.group, gateway: g.active.name, node_id: g.active.nodeId }, 1)
      }
      relaying.set({}, info.relay ? 1 : 0)
      if (relay !== undefined) {
        relayPairs.set({}, relay.pairs)
        relayPackets.set({}, this.totals.observe('relay packets', relay.packets))
        relayBytes.set({}, this.totals.observe('relay bytes', relay.bytes))
      }
    }
    const r = this.registry = new MetricsRegistry(scrape, processMetrics)
    r.add(new Metric('wgmesh_build_info', 'wgmesh version of this agent (always 1)', 'gauge', ['version'])).set({ version }, 1)
    const rejected = r.add(new Metric('wgmesh_records_rejected_total', 'Records refused, by reason', 'counter', ['reason']))
    for (const reason of REJECT_REASONS) rejected.inc({ reason }, 0)
    this.rejected = rejected
    this.accepted = r.add(new Metric('wgmesh_records_accepted_total', 'Records taken into the table', 'counter', ['via']))
    this.ignored = r.add(new Metric('wgmesh_records_ignored_total', 'Records dropped without blame (duplicates, stale sync copies, own)', 'counter', ['reason']))
    const applyFailures = r.add(new Metric<never>('wgmesh_wireguard_apply_failures_total', 'WireGuard applies that failed (each is retried after 1 s)', 'counter', []))
    applyFailures.inc({}, 0)
    this.applyFailures = applyFailures
    const peers = r.add(new Metric('wgmesh_peers', 'Mesh members by status', 'gauge', ['status']))
    const rx = r.add(new Metric('wgmesh_peer_rx_bytes_total', 'WireGuard bytes received from a peer (monotonic across re-created peer entries)', 'counter', ['peer', 'node_id']))
    const tx = r.add(new Metric('wgmesh_peer_tx_bytes_total', 'WireGuard bytes sent to a peer (monotonic across re-created peer entries)', 'counter', ['peer', 'node_id']))
    const hs = r.add(new Metric('wgmesh_peer_last_handshake_timestamp_seconds', 'Unix time of the latest WireGuard handshake with a peer (absent: none yet)', 'gauge', ['peer', 'node_id']))
    const pathG = r.add(new Metric('wgmesh_peer_path', 'How traffic to a peer travels now: 1 for the current path, 0 for the others', 'gauge', ['peer', 'node_id', 'path']))
    const via = r.add(new Metric('wgmesh_peer_relay_info', 'The member relaying traffic to a peer (present only while relayed; always 1)', 'gauge', ['peer', 'node_id', 'via']))
    const rtt = r.add(new Metric('wgmesh_peer_rtt_seconds', 'Round-trip time to a peer through the tunnel: median of the last 5 failure-detector probe samples (absent: none in the last 10 min)', 'gauge', ['peer', 'node_id']))
    const nat = r.add(new Metric('wgmesh_nat_type', 'This node\'s NAT type from its STUN probes: 1 for the current type, 0 for the others', 'gauge', ['type']))
    const relaying = r.add(new Metric('wgmesh_relay_enabled', 'Whether this node relays for others (1) or not (0)', 'gauge', []))
    const relayPairs = r.add(new Metric('wgmesh_relay_pairs', 'Peer pairs this node relays for now', 'gauge', []))
    const relayPackets = r.add(new Metric('wgmesh_relay_packets_total', 'Packets this node relayed for others', 'counter', []))
    const relayBytes = r.add(new Metric('wgmesh_relay_bytes_total', 'Bytes this node relayed for others', 'counter', []))
    this.gatewayFailovers = r.add(new Metric('wgmesh_gateway_failovers_total', 'Times this node saw a gateway group\'s active gateway change to another member', 'counter', ['group']))
    this.routesRejected = r.add(new Metric('wgmesh_routes_rejected_total', 'Advertised routes refused (malformed, overlapping the mesh or another group\'s), by the advertiser\'s group', 'counter', ['group']))
    const gwActive = r.add(new Metric('wgmesh_gateway_active', 'The active gateway of each group this node sees (always 1)', 'gauge', ['group', 'gateway', 'node_id']))
    const perScrape = [gwActive, peers, rx, tx, hs, pathG, via, rtt, nat, relaying, relayPairs, relayPackets, relayBytes]
  }

  /**
   * Give each peer's rx/tx in `info` monotonic totals (`rxTotal`, `txTotal`), remembering the
   * WireGuard values to notice a re-created entry. Called for every scrape and `wgmesh info`.
   */
  observe (info: AgentInfo): void {
    const ids = new Set(info.peers.map(p => p.nodeId))
    this.totals.retain(k => k.startsWith('relay ') || ids.has(k.slice(3)))
    for (const p of info.peers) {
      p.rxTotal = this.totals.observe(`rx ${p.nodeId}`, p.rxBytes)
      p.txTotal = this.totals.observe(`tx ${p.nodeId}`, p.txBytes)
    }
  }

  reject (reason: RejectReason): void {
    this.rejected.inc({ reason })
    this.counts.set(reason, (this.counts.get(reason) ?? 0) + 1)
  }

  /** A WireGuard apply failed. */
  applyFailed (): void {
    this.applyFailures.inc({})
  }

  /** Rejections so far, by reason (for `wgmesh info --json`). */
  rejections (): Record<string, number> {
    return Object.fromEntries(this.counts)
  }
}
